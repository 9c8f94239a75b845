using System.Text.Json.Nodes;
using DetSeg.Data;
using DetSeg.Segmentation;

namespace DetSeg.Bench;

/// <summary>
/// The quality run behind notebook 02's loss-weight answer: U-Nets trained with class weights [1, 1] and [1, 2], same
/// seed, the current <c>DETSEG_PROFILE</c>'s settings (cpu: 128 px, width 16, ≤ 30 epochs, patience 5), on the course's
/// 136 / 17 / 17 split; the test pedestrian IoU of each. <c>DETSEG_WEIGHTS="1,1;1,2"</c> chooses the weight vectors. Needs Penn-Fudan under <c>DETSEG_DATA</c>. Per-epoch lines go to stderr.
/// </summary>
public sealed class SegmentationWeightsBench : IBenchmark
{
    /// <inheritdoc/>
    public string Name => "segmentation-weights";

    /// <inheritdoc/>
    public void Run(JsonObject result)
    {
        var profile = DetSeg.Runtime.Profile.Current;
        int imageSize = profile.Pick(smoke: 64, cpu: 128, gpu: 256);
        long width = profile.Pick(smoke: 4L, cpu: 16L, gpu: 64L);
        int epochs = profile.Pick(smoke: 2, cpu: 30, gpu: 30);
        var splits = RandomSplit.Split(new PennFudan(), [136, 17, 17], seed: 0);
        // DETSEG_WEIGHTS="1,1;1,2" picks the weight vectors (default both), so each can run in its own process.
        var weights = (Environment.GetEnvironmentVariable("DETSEG_WEIGHTS") ?? "1,1;1,2").Split(';', StringSplitOptions.RemoveEmptyEntries)
            .Select(v => v.Split(',').Select(x => double.Parse(x, System.Globalization.CultureInfo.InvariantCulture)).ToArray()).ToList();
        var runs = ClassWeightComparison.Run(weights, splits[0], splits[1], splits[2], imageSize, width, epochs, log: Console.Error);
        result["profile"] = profile.ToString();
        result["settings"] = $"{imageSize} px, width {width}, <= {epochs} epochs, batch 4, seed 0, patience 5";
        var list = new JsonArray();
        foreach (var r in runs)
            list.Add(new JsonObject
            {
                ["weights"] = string.Join(",", r.Weights),
                ["test_pedestrian_iou"] = Num(r.TestPedestrianIou),
                ["test_mean_iou"] = Num(r.TestMeanIou),
                ["test_pedestrian_recall"] = Num(r.TestPedestrianRecall),
                ["test_pedestrian_precision"] = Num(r.TestPedestrianPrecision),
                ["best_epoch"] = r.BestEpoch,
                ["epochs"] = r.Epochs,
                ["val_mean_iou"] = Num(r.ValMeanIou),
                ["minutes"] = Math.Round(r.Elapsed.TotalMinutes, 2),
                ["stop"] = r.StopMessage,
            });
        result["runs"] = list;
    }

    // JSON has no NaN: a run stopped by an invalid loss reports null.
    static JsonNode? Num(double v) => double.IsFinite(v) ? JsonValue.Create(Math.Round(v, 4)) : null;
}

using System.Diagnostics;
using System.Text.Json.Nodes;
using DetSeg.Data;
using DetSeg.Detection;
using DetSeg.Inference;
using DetSeg.Runtime;
using DetSeg.Segmentation;
using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Bench;

/// <summary>
/// <c>bf16-accuracy</c>: what bfloat16 inference costs on the notebooks' test sets. The same trained weights are
/// evaluated in float32, then converted (<c>WithPrecision(BFloat16)</c>) and evaluated again: Penn-Fudan test
/// pedestrian IoU (notebook 02's seed-0 split 136/17/17) and MNIST-clutter test mAP@0.5 (notebook 03's recipe).
/// Issue 15's bar: both within 0.5 points of float32.
/// </summary>
/// <remarks>
/// Weights: <c>DETSEG_BF16_UNET</c> / <c>DETSEG_BF16_YOLO</c> name state_dict files (<see cref="ModelFile.Load"/>:
/// .safetensors/.pt of a notebook's model); without them each model is trained here first with the current profile's
/// settings (cpu: U-Net width 16 at 128 px, ≤ 30 epochs, ~11 min; the YOLOv3 recipe ~14 min on 2 idle cores).
/// <c>DETSEG_BF16_EPOCHS</c> caps the U-Net's epochs, <c>DETSEG_RECIPE</c> overrides the detector's recipe as in
/// <c>detection-train</c>, and <c>DETSEG_BF16_PARTS=seg</c> or <c>det</c> runs one half. Needs <c>DETSEG_DATA</c>.
/// </remarks>
public sealed class Bf16AccuracyBench : IBenchmark
{
    /// <inheritdoc/>
    public string Name => "bf16-accuracy";

    /// <inheritdoc/>
    public void Run(JsonObject result)
    {
        var parts = (Environment.GetEnvironmentVariable("DETSEG_BF16_PARTS") ?? "seg,det").Split(',', StringSplitOptions.TrimEntries);
        result["profile"] = Profile.Current.ToString();
        if (parts.Contains("seg")) result["segmentation"] = Segmentation();
        if (parts.Contains("det")) result["detection"] = Detection();
    }

    static JsonObject Segmentation()
    {
        var dev = Runtime.Device.Default;
        var profile = Profile.Current;
        int imageSize = profile.Pick(smoke: 64, cpu: 128, gpu: 256);
        var r = new JsonObject();
        var splits = RandomSplit.Split(new PennFudan(), [136, 17, 17], seed: 0);
        var testSet = new PFSegmentation(splits[2], imageSize, device: dev);
        using var testLoader = new DataLoader(testSet, batchSize: 17, device: dev);
        SemanticSegmentor model;
        string? path = Environment.GetEnvironmentVariable("DETSEG_BF16_UNET");
        var clock = Stopwatch.StartNew();
        if (path is not null)
        {
            model = (SemanticSegmentor)ModelFile.Load(path, dev).Model;
            r["weights"] = path;
        }
        else
        {
            long width = profile.Pick(smoke: 4L, cpu: 16L, gpu: 64L);
            int epochs = int.TryParse(Environment.GetEnvironmentVariable("DETSEG_BF16_EPOCHS"), out var e) ? e : profile.Pick(smoke: 2, cpu: 30, gpu: 30);
            var valSet = new PFSegmentation(splits[1], imageSize, device: dev);
            using var valLoader = new DataLoader(valSet, batchSize: 17, device: dev);
            var trainSet = new PFSegmentation(splits[0], imageSize, seed: 0, device: dev) { Training = true };
            using var trainLoader = new DataLoader(trainSet, batchSize: 4, shuffle: true, dropLast: true, seed: 0, device: dev, numWorkers: 0);
            manual_seed(0);
            model = new SemanticSegmentor(3, 2, width).to(dev);
            using var opt = optim.Adam(model.parameters(), lr: 1e-3);
            var trainer = SegmentationTraining.CreateTrainer(model, opt, device: dev, classWeights: SegmentationLoss.CourseWeights);
            var run = trainer.Train(trainLoader, valLoader, SegmentationTraining.DefaultOptions(epochs: epochs) with
            {
                Generators = [trainSet.AugmentationGenerator], Progress = Progress.None, Log = Console.Error,
            });
            run.Best!.Restore(model);
            r["weights"] = $"trained here: width {width}, {imageSize} px, best epoch {run.BestEpoch} of {run.History.Count}";
            r["train_minutes"] = Math.Round(clock.Elapsed.TotalMinutes, 1);
        }
        foreach (var precision in new[] { InferencePrecision.Float32, InferencePrecision.BFloat16 })
        {
            model.WithPrecision(precision);
            var evaluator = SegmentationTraining.CreateTrainer(model, null, device: dev, classWeights: SegmentationLoss.CourseWeights);
            var sw = Stopwatch.StartNew();
            var t = evaluator.OneEpoch(Phase.Testing, testLoader);
            string key = precision == InferencePrecision.Float32 ? "float32" : "bfloat16";
            r[$"test_pedestrian_iou_{key}"] = Math.Round(t["iou_1"], 5);
            r[$"test_mean_iou_{key}"] = Math.Round(t["mean_iou"], 5);
            r[$"test_pass_seconds_{key}"] = Math.Round(sw.Elapsed.TotalSeconds, 2);
        }
        r["pedestrian_iou_points_lost"] = Math.Round(100 * (r["test_pedestrian_iou_float32"]!.GetValue<double>() - r["test_pedestrian_iou_bfloat16"]!.GetValue<double>()), 3);
        Console.Error.WriteLine($"[bf16-accuracy] segmentation {r.ToJsonString()}");
        return r;
    }

    static JsonObject Detection()
    {
        var dev = Runtime.Device.Default;
        var r = new JsonObject();
        var recipe = DetectionTrainBench.Recipe(Environment.GetEnvironmentVariable("DETSEG_RECIPE"));
        manual_seed(0);
        using var data = recipe.CreateData(dev);
        YOLOv3 model;
        string? path = Environment.GetEnvironmentVariable("DETSEG_BF16_YOLO");
        var clock = Stopwatch.StartNew();
        if (path is not null)
        {
            model = (YOLOv3)ModelFile.Load(path, dev).Model;
            r["weights"] = path;
        }
        else
        {
            var (std, mean) = Anchors.CourseBoxStats();
            var anchors = Anchors.ToPixels(Anchors.Lattice(std, mean), MnistClutterRecipe.ImageSize).to(float32);
            model = new YOLOv3(3, 10, recipe.Scale, anchors).to(dev);
            var trainLoss = new CustomYOLOv3Loss(MnistClutterRecipe.ImageSize, model.anchors).to(dev);
            var opt = optim.Adam(model.parameters(), recipe.LearningRate);
            var trainer = DetectionTraining.CreateTrainer(model, opt, trainLoss, dev);
            var run = trainer.Train(data.Train, data.Val, DetectionTraining.DefaultOptions(opt, recipe.Epochs) with
            {
                Log = Console.Error, Progress = Progress.None,
            });
            run.Best!.Restore(model);
            r["weights"] = $"trained here: {recipe}, best epoch {run.BestEpoch}";
            r["train_minutes"] = Math.Round(clock.Elapsed.TotalMinutes, 1);
            // Kept for reruns without retraining: DETSEG_BF16_YOLO=<this file>.
            string saved = Path.Combine(Path.GetTempPath(), "detseg-bf16-yolo.safetensors");
            DetSeg.Interop.PyTorchWeights.Save(model, saved);
            r["saved_weights"] = saved;
        }
        var loss = new CustomYOLOv3Loss(MnistClutterRecipe.ImageSize, model.anchors).to(dev);
        foreach (var precision in new[] { InferencePrecision.Float32, InferencePrecision.BFloat16 })
        {
            model.WithPrecision(precision);
            var evaluator = DetectionTraining.CreateTrainer(model, null, loss, dev);
            var sw = Stopwatch.StartNew();
            evaluator.OneEpoch(Phase.Testing, data.Test);
            string key = precision == InferencePrecision.Float32 ? "float32" : "bfloat16";
            r[$"test_map50_{key}"] = Math.Round(evaluator.Metrics.Map50, 5);
            r[$"test_map50_95_{key}"] = Math.Round(evaluator.Metrics.Map50To95, 5);
            r[$"test_pass_seconds_{key}"] = Math.Round(sw.Elapsed.TotalSeconds, 2);
        }
        r["map50_points_lost"] = Math.Round(100 * (r["test_map50_float32"]!.GetValue<double>() - r["test_map50_bfloat16"]!.GetValue<double>()), 3);
        {
            // bfloat16 with BN run unfolded in bfloat16 (what WithPrecision did before it folded from float32).
            foreach (var m in model.modules()) if (m is DetSeg.Detection.ConvBlock block) block.Unfuse();
            var evaluator = DetectionTraining.CreateTrainer(model, null, loss, dev);
            evaluator.OneEpoch(Phase.Testing, data.Test);
            r["test_map50_bfloat16_bn_in_bfloat16"] = Math.Round(evaluator.Metrics.Map50, 5);
            r["test_map50_95_bfloat16_bn_in_bfloat16"] = Math.Round(evaluator.Metrics.Map50To95, 5);
        }
        Console.Error.WriteLine($"[bf16-accuracy] detection {r.ToJsonString()}");
        return r;
    }
}

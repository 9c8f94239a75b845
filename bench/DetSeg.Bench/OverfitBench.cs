using System.Text.Json.Nodes;
using DetSeg.Data;
using DetSeg.Detection;

namespace DetSeg.Bench;

/// <summary>
/// Notebook 03's overfit lesson as a quality run: <see cref="OverfitCheck"/> on the first 64 MNIST-clutter images
/// (≤ 3 digits) with the current profile's settings; the loss per epoch and mAP on the same images.
/// <c>DETSEG_OVERFIT="Epochs=300;Target=1;Lr=0.002;Images=64;Size=64;Batch=8;Width=0.125;Depth=0.25"</c> overrides settings for searches.
/// Needs MNIST under <c>DETSEG_DATA</c>; per-epoch lines go to stderr.
/// </summary>
public sealed class OverfitBench : IBenchmark
{
    /// <inheritdoc/>
    public string Name => "overfit";

    /// <inheritdoc/>
    public void Run(JsonObject result)
    {
        var s = OverfitSettings.For(DetSeg.Runtime.Profile.Current);
        foreach (var kv in (Environment.GetEnvironmentVariable("DETSEG_OVERFIT") ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var (k, v) = (kv.Split('=')[0].Trim(), double.Parse(kv.Split('=')[1], System.Globalization.CultureInfo.InvariantCulture));
            s = k switch
            {
                "Epochs" => s with { MaxEpochs = (int)v },
                "Target" => s with { TargetLoss = v },
                "Lr" => s with { LearningRate = v },
                "Images" => s with { Images = (int)v },
                "Width" => s with { Scale = s.Scale with { Width = v } },
                "Depth" => s with { Scale = s.Scale with { Depth = v } },
                "Size" => s with { ImageSize = (int)v },
                "Batch" => s with { BatchSize = (int)v },
                _ => throw new ArgumentException($"DETSEG_OVERFIT: unknown setting '{k}'."),
            };
        }
        var r = s.Run(onEpoch: (e, l) => Console.Error.WriteLine($"epoch {e}: loss {l:F4}"));
        result["settings"] = s.ToString();
        result["result"] = r.ToString();
        result["map50"] = Math.Round(r.Map50, 4);
        result["map50_95"] = Math.Round(r.Map50To95, 4);
        result["epochs"] = r.Epochs;
        result["seconds"] = Math.Round(r.Elapsed.TotalSeconds, 1);
        result["losses"] = new JsonArray(r.Losses.Select(l => (JsonNode)JsonValue.Create(Math.Round(l, 4))).ToArray());
    }
}

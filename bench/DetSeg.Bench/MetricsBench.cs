using System.Text.Json.Nodes;
using DetSeg.Metrics;
using static TorchSharp.torch;

namespace DetSeg.Bench;

/// <summary>
/// <c>ClassificationMetrics.Update</c> on 2-class argmax predictions vs targets at 4x256x256
/// (the segmentation evaluation shape). The course's own code takes 3.8 ms here (baseline.json).
/// </summary>
public sealed class MetricsBench : IBenchmark
{
    /// <inheritdoc/>
    public string Name => "metrics";

    /// <inheritdoc/>
    public void Run(JsonObject result)
    {
        var device = DetSeg.Runtime.Device.Default;
        var g = new Generator(0);
        var logits = randn(new long[] { 4, 2, 256, 256 }, generator: g).to(device);
        var pred = logits.argmax(1);
        var target = randint(-1, 2, new long[] { 4, 256, 256 }, generator: g).to(device); // -1 = padding
        using var metrics = new ClassificationMetrics(2);
        result["shape"] = "4x256x256, 2 classes, targets in {-1,0,1}";
        result["update"] = Bench.Time(() =>
        {
            metrics.Update(pred, target);
            if (device.type == TorchSharp.DeviceType.CUDA) cuda.synchronize();
        }, reps: 51, warmup: 5);
        result["pytorch_course_code_ms"] = 3.7676;
    }
}

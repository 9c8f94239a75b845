using System.Diagnostics;
using System.Text.Json.Nodes;
using DetSeg.Detection;
using DetSeg.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Bench;

/// <summary>
/// <c>levers</c>: inference levers measured A/B inside one process, A and B alternating call by call, so that a busy
/// machine's drift hits both alike: per lever the median of each side and the median of the per-pair ratios B/A.
/// YOLOv3-416 forward with BatchNorm folded into the convs (<see cref="YOLOv3.Fuse"/>) against plain, in float32 and
/// in bfloat16. <c>BENCH_REPS</c> pairs (default 9).
/// </summary>
public sealed class LeversBench : IBenchmark
{
    /// <inheritdoc/>
    public string Name => "levers";

    /// <inheritdoc/>
    public void Run(JsonObject result)
    {
        int pairs = int.TryParse(Environment.GetEnvironmentVariable("BENCH_REPS"), out var r) && r > 0 ? r : 9;
        var dev = Runtime.Device.Default;
        manual_seed(0);
        var plain = new YOLOv3(3, 80).to(dev);
        var fused = new YOLOv3(3, 80).to(dev);
        fused.load_state_dict(plain.state_dict());
        plain.eval();
        fused.eval();
        var x = randn(1, 3, 416, 416, device: dev);
        foreach (var precision in new[] { InferencePrecision.Float32, InferencePrecision.BFloat16 })
        {
            plain.WithPrecision(precision);
            fused.WithPrecision(precision).Fuse();
            string key = $"yolo_forward_416_bn_folded_vs_plain_{(precision == InferencePrecision.Float32 ? "float32" : "bfloat16")}";
            result[key] = AB(() => Forward(plain, x), () => Forward(fused, x), pairs);
            Console.Error.WriteLine($"[levers] {key} {result[key]!.ToJsonString()}");
        }
    }

    static void Forward(YOLOv3 model, Tensor x)
    {
        using var scope = NewDisposeScope();
        using var g = no_grad();
        model.call(x);
    }

    /// <summary>Alternating A/B timing: A then B in odd pairs, B then A in even ones; 1 warm-up each.</summary>
    public static JsonObject AB(Action a, Action b, int pairs)
    {
        a(); b();
        var ta = new List<double>(); var tb = new List<double>(); var ratio = new List<double>();
        for (int i = 0; i < pairs; i++)
        {
            double ma = 0, mb = 0;
            foreach (bool first in i % 2 == 0 ? new[] { true, false } : new[] { false, true })
            {
                var sw = Stopwatch.StartNew();
                (first ? a : b)();
                if (first) ma = sw.Elapsed.TotalMilliseconds; else mb = sw.Elapsed.TotalMilliseconds;
            }
            ta.Add(ma); tb.Add(mb); ratio.Add(mb / ma);
        }
        static double Median(List<double> v) { var s = v.Order().ToList(); return s[s.Count / 2]; }
        return new JsonObject
        {
            ["a_median_ms"] = Math.Round(Median(ta), 2),
            ["b_median_ms"] = Math.Round(Median(tb), 2),
            ["ratio_b_over_a_median"] = Math.Round(Median(ratio), 3),
            ["ratio_b_over_a_min_max"] = new JsonArray(Math.Round(ratio.Min(), 3), Math.Round(ratio.Max(), 3)),
            ["pairs"] = pairs,
        };
    }
}

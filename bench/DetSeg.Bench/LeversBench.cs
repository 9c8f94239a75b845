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
/// in bfloat16; the U-Net's 2x2 max pools as two pairwise maxima (<see cref="MaxPool"/>) against libtorch's max_pool2d,
/// at the U-Net's shapes for 4x3x256; and YOLOv3-416's NMS (its 10,647 random-weight outputs, the course's score
/// threshold 0) scanned on the host against the IoU-block path (<see cref="BatchedNms"/>). <c>BENCH_REPS</c> pairs
/// (default 9); <c>LEVERS_ONLY=yolo,maxpool,nms</c> runs only those.
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
        var only = Environment.GetEnvironmentVariable("LEVERS_ONLY")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        bool On(string name) => only is null || only.Contains(name);
        if (On("maxpool")) MaxPools(result, dev, pairs);
        if (On("nms")) Nms(result, dev, pairs);
        if (!On("yolo")) return;
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

    static void MaxPools(JsonObject result, torch.Device dev, int pairs)
    {
        var pool = nn.MaxPool2d(2);
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
            foreach (var (c, s) in new[] { (64L, 256L), (128L, 128L), (256L, 64L), (512L, 32L) })
            {
                manual_seed(0);
                var x = randn(4, c, s, s, device: dev).to(dtype);
                string key = $"maxpool2x2_4x{c}x{s}_pairwise_vs_max_pool2d_{(dtype == ScalarType.Float32 ? "float32" : "bfloat16")}";
                result[key] = AB(() => { using var g = no_grad(); using var sc = NewDisposeScope(); pool.call(x); },
                                 () => { using var g = no_grad(); using var sc = NewDisposeScope(); MaxPool.Forward(pool, x); }, pairs);
                Console.Error.WriteLine($"[levers] {key} {result[key]!.ToJsonString()}");
                x.Dispose();
            }
    }

    static void Nms(JsonObject result, torch.Device dev, int pairs)
    {
        if (dev.type != DeviceType.CPU) return;                                   // the host scan is for CPU tensors
        manual_seed(0);
        using var yolo = new YOLOv3(3, 80).to(dev);
        yolo.eval();
        using var scope = NewDisposeScope();
        Tensor rs, rb, rl;
        using (no_grad()) (rs, rb, rl) = yolo.call(randn(1, 3, 416, 416, device: dev));
        var (maxProbs, labels) = rl.softmax(-1).max(-1);
        var adjusted = maxProbs * rs.sigmoid();
        var xyxy = BoxOps.CxCyWhToXyxy(rb);
        result["nms_yolo416_host_scan_vs_iou_blocks"] = AB(
            () => { using var sc = NewDisposeScope(); BatchedNms.Keep(xyxy, adjusted, labels, 0.6, null, BatchedNms.DefaultChunkElements, hostScan: false); },
            () => { using var sc = NewDisposeScope(); BatchedNms.Keep(xyxy, adjusted, labels, 0.6, null, BatchedNms.DefaultChunkElements, hostScan: true); }, pairs);
        Console.Error.WriteLine($"[levers] nms {result["nms_yolo416_host_scan_vs_iou_blocks"]!.ToJsonString()}");
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

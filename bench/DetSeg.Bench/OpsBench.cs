using System.Text.Json.Nodes;
using DetSeg.Detection;
using DetSeg.Metrics;
using DetSeg.Segmentation;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Bench;

/// <summary>
/// <c>ops</c>: DetSeg's side of <c>bench/compare --ops</c> (PyTorch's: <c>bench/reference_ops.py</c>). Raw TorchSharp
/// calls (<c>nn.functional</c> on random tensors, no DetSeg module) on every distinct op shape of the U-Net
/// inference at 4x3x256x256 and the YOLOv3-416 forward, a 2048² matmul and the metrics-update ops, under the same
/// keys, repetitions and protocol; plus the whole DetSeg forward of each model and the sum of its ops, which
/// separates the kernels' time from what driving them through DetSeg's modules adds.
/// </summary>
/// <remarks>
/// The op list comes from forward hooks on DetSeg's own <see cref="SemanticSegmentor"/>(3, 2) and
/// <see cref="YOLOv3"/>(3, 80), as the Python side hooks seed_ref's models, so a key on one side only means the two
/// models differ there. Each op records what the model ran (in-place or not, slope, whether <c>ConvGuard</c> hooks the
/// conv). Idle wait once per section, not per op (as reference_ops.py). <c>OPS_ONLY=unet,yolo,matmul,metrics</c>.
/// </remarks>
public sealed class OpsBench : IBenchmark
{
    /// <inheritdoc/>
    public string Name => "ops";

    static readonly int Reps = int.TryParse(Environment.GetEnvironmentVariable("BENCH_REPS"), out var r) && r > 0 ? r : 5;
    static readonly int SmallReps = Math.Max(Reps, 20); // ~1 ms metrics ops, as compare's metrics row
    const int Warmup = 2;
    static readonly string[]? Only = Environment.GetEnvironmentVariable("OPS_ONLY")?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
    static bool On(string section) => Only is null || Only.Contains(section);
    // OPS_PROBE=1: run each model op once after a marker line, untimed, for oneDNN's verbose log (bench/compare_ops.py)
    static readonly bool Probe = Environment.GetEnvironmentVariable("OPS_PROBE") == "1";

    /// <summary>One op shape: what a hooked module ran, and how many times per forward.</summary>
    sealed record Spec(string Kind, long[] Input, long Out = 0, long K = 0, long Stride = 1, long Pad = 0,
        bool Bias = false, double Slope = 0, bool InPlace = false, bool Guarded = false)
    {
        public int Count { get; set; }

        public JsonObject ToJson() => new()
        {
            ["kind"] = Kind, ["input"] = new JsonArray(Input.Select(v => (JsonNode)v).ToArray()), ["out"] = Out, ["k"] = K,
            ["stride"] = Stride, ["pad"] = Pad, ["bias"] = Bias, ["slope"] = Slope, ["inplace"] = InPlace,
            ["conv_guard"] = Guarded, ["count"] = Count,
        };
    }

    /// <inheritdoc/>
    public void Run(JsonObject result)
    {
        var details = new JsonObject();
        var counts = new JsonObject();
        var specs = new JsonObject();
        void Section() => CleanTimer.WaitIdleNow(); // once per section: see the remarks
        void Row(string key, JsonObject timing)
        {
            details[key] = timing;
            result[key] = timing["median_ms"]!.GetValue<double>();
            Console.Error.WriteLine($"[ops] {key}: {result[key]} ms");
        }
        void ModelSection(string prefix, nn.Module model, Tensor x, Action forward)
        {
            model.eval();
            var found = Record(prefix, model, x.shape[0], forward);
            if (Probe)
            {
                foreach (var (key, spec) in found)
                {
                    Console.Out.WriteLine($"OPS_PROBE {key}");
                    Console.Out.Flush();
                    using (var scope = NewDisposeScope()) OpAction(spec)();
                    Console.Out.WriteLine("OPS_PROBE_END");
                    Console.Out.Flush();
                }
                return;
            }
            Row($"{prefix} forward (model)", CleanTimer.Time(forward, Reps, Warmup, waitIdle: false));
            double sum = 0;
            foreach (var (key, spec) in found)
            {
                using (var scope = NewDisposeScope())
                    Row(key, CleanTimer.Time(OpAction(spec), Reps, Warmup, waitIdle: false));
                counts[key] = spec.Count;
                specs[key] = spec.ToJson();
                sum += spec.Count * result[key]!.GetValue<double>();
            }
            result[$"{prefix} ops sum"] = Math.Round(sum, 4);
            Console.Error.WriteLine($"[ops] {prefix}: forward {result[$"{prefix} forward (model)"]} ms, ops sum {result[$"{prefix} ops sum"]} ms");
        }

        manual_seed(0);
        if (On("unet"))
        {
            Section();
            using var unet = new SemanticSegmentor(3, 2);
            var x = randn(4, 3, 256, 256);
            ModelSection("unet", unet, x, () => { using var s = NewDisposeScope(); using var g = no_grad(); unet.call(x); });
        }
        if (On("yolo"))
        {
            Section();
            using var yolo = new YOLOv3(3, 80);
            var x = randn(1, 3, 416, 416);
            ModelSection("yolo", yolo, x, () => { using var s = NewDisposeScope(); using var g = no_grad(); yolo.call(x); });
        }
        if (On("matmul") && !Probe)
        {
            Section();
            var a = randn(2048, 2048);
            var b = randn(2048, 2048);
            Row("matmul 2048 f32", CleanTimer.Time(() => { using var s = NewDisposeScope(); a.matmul(b); }, Reps, Warmup, waitIdle: false));
        }
        if (On("metrics") && !Probe)
        {
            Section();
            Metrics(Row);
        }
        result["counts"] = counts;
        result["specs"] = specs;
        result["details"] = details;
        var (discarded, idleWait) = CleanTimer.Contention;
        result["meta"] = new JsonObject
        {
            ["threads"] = get_num_threads(), ["contention"] = new JsonObject
            {
                ["discarded_reps"] = discarded, ["idle_wait_s"] = Math.Round(idleWait, 1), ["foreign_max"] = CleanTimer.ForeignMax,
            },
        };
    }

    /// <summary>Every conv, BatchNorm, LeakyReLU and max-pool call of one eval forward, by key, in first-call order.</summary>
    static List<(string Key, Spec Spec)> Record(string prefix, nn.Module model, long batch, Action forward)
    {
        var found = new List<(string, Spec)>();
        var byKey = new Dictionary<string, Spec>();
        void Add(string key, Spec spec)
        {
            if (!byKey.TryGetValue(key, out var known)) { byKey[key] = known = spec; found.Add((key, spec)); }
            known.Count++;
        }
        // batch from the model's input: ConvGuard hands a guarded conv module an empty batch
        long[] Shape(Tensor t) => [batch, t.shape[1], t.shape[2], t.shape[3]];
        string Side(Tensor t) => t.shape[2] == t.shape[3] ? $"@{t.shape[2]}" : $"@{t.shape[2]}x{t.shape[3]}";
        var removers = new List<Action>();
        foreach (var m in model.modules())
        {
            switch (m)
            {
                case Convolution conv when conv.kernel_size.Length == 2:
                    var hc = conv.register_forward_hook((_, x, y) =>
                    {
                        long k = conv.kernel_size[0], s = conv.stride[0], cin = conv.in_channels, cout = conv.out_channels;
                        var spec = new Spec(conv.transposed ? "conv_transpose2d" : "conv2d", Shape(x), cout, k, s, conv.padding![0],
                            conv.bias is not null, Guarded: Runtime.ConvGuard.IsProtected(conv));
                        if (conv.transposed)
                        {
                            Add($"{prefix} convT{k}x{k}s{s} {cin}>{cout} {Side(x)}", spec);
                            Add($"{prefix} cat {cout}+{cout} {Side(y)}", new Spec("cat", [batch, cout, y.shape[2], y.shape[3]]));
                        }
                        else Add($"{prefix} conv{k}x{k}{(s != 1 ? $"s{s}" : "")} {cin}>{cout} {Side(x)}", spec);
                        return y;
                    });
                    removers.Add(() => hc.remove());
                    break;
                case Runtime.BatchNorm2d bn:
                    var hb = bn.register_forward_hook((_, x, y) => { Add($"{prefix} bn {x.shape[1]} {Side(x)}", new Spec("batch_norm", Shape(x))); return y; });
                    removers.Add(() => hb.remove());
                    break;
                case Runtime.LeakyReLU lr:
                    var hl = lr.register_forward_hook((_, x, y) =>
                    {
                        Add($"{prefix} leaky {x.shape[1]} {Side(x)}", new Spec("leaky_relu", Shape(x), Slope: lr.NegativeSlope, InPlace: lr.InPlace));
                        return y;
                    });
                    removers.Add(() => hl.remove());
                    break;
                case MaxPool2d mp:
                    var hp = mp.register_forward_hook((_, x, y) =>
                    {
                        long k = x.shape[2] / y.shape[2]; // the U-Net's pools: kernel = stride
                        Add($"{prefix} maxpool{k} {x.shape[1]} {Side(x)}", new Spec("max_pool2d", Shape(x), K: k));
                        return y;
                    });
                    removers.Add(() => hp.remove());
                    break;
                case var other when other.GetType().Namespace == "TorchSharp.Modules" && other.GetType().Name is "BatchNorm2d" or "LeakyReLU":
                    throw new InvalidOperationException($"OpsBench: {prefix} uses TorchSharp's {other.GetType().Name}; the hooks know DetSeg's Runtime modules only.");
            }
        }
        try { forward(); }
        finally { foreach (var remove in removers) remove(); }
        return found;
    }

    /// <summary>The spec's op once, on random tensors made here (registered in the caller's dispose scope).</summary>
    static Action OpAction(Spec spec)
    {
        var x = randn(spec.Input);
        long c = spec.Input[1];
        switch (spec.Kind)
        {
            case "conv2d" or "conv_transpose2d":
                var w = (spec.Kind == "conv2d" ? randn(spec.Out, c, spec.K, spec.K) : randn(c, spec.Out, spec.K, spec.K)).mul_(0.05);
                var b = spec.Bias ? randn(spec.Out) : null;
                long[] stride = [spec.Stride, spec.Stride], pad = [spec.Pad, spec.Pad];
                if (spec.Kind == "conv2d")
                    return () => { using var s = NewDisposeScope(); nn.functional.conv2d(x, w, b, strides: stride, padding: pad); };
                return () => { using var s = NewDisposeScope(); nn.functional.conv_transpose2d(x, w, b, strides: stride, padding: pad); };
            case "batch_norm":
                var (mean, var, bw, bb) = (randn(c), rand(c).add_(0.5), randn(c), randn(c));
                return () => { using var s = NewDisposeScope(); nn.functional.batch_norm(x, mean, var, bw, bb, false, 0.1, 1e-5); };
            case "leaky_relu":
                var slope = spec.Slope.ToScalar();
                if (!spec.InPlace) return () => { using var s = NewDisposeScope(); x.leaky_relu(slope); GC.KeepAlive(slope); };
                x.abs_(); // repeated in-place calls would shrink the negatives to denormals (slow); the kernel is sign-blind
                return () => { using var s = NewDisposeScope(); x.leaky_relu_(slope); GC.KeepAlive(slope); };
            case "max_pool2d":
                long[] kernel = [spec.K, spec.K];
                return () => { using var s = NewDisposeScope(); nn.functional.max_pool2d(x, kernel); };
            case "cat":
                var y = randn(spec.Input);
                return () => { using var s = NewDisposeScope(); cat([x, y], 1); };
            default:
                throw new ArgumentException($"OpsBench: unknown op kind '{spec.Kind}'.", nameof(spec));
        }
    }

    /// <summary>The ops of seed_ref's ClassificationMetrics.update and of DetSeg's bincount update on 4x256x256.</summary>
    static void Metrics(Action<string, JsonObject> row)
    {
        manual_seed(0);
        var pred = randint(0, 2, [4, 256, 256]).flatten();
        var truth = randint(-1, 2, [4, 256, 256]).flatten();
        var classes = arange(0L, 2L, 1L);
        using Scalar zero = 0L, one = 1L, two = 2L, four = 4L, five = 5L, minusOne = -1L;
        Tensor Valid() => truth.ge(zero).bitwise_and(truth.lt(two));
        var valid = Valid();
        var (p, t) = (pred[valid], truth[valid]);
        var (pos, tpos) = (classes.view(-1, 1).eq(p.view(1, -1)), classes.view(-1, 1).eq(t.view(1, -1)));
        Tensor Index() => truth.clamp(minusOne, two).mul_(four).add_(pred.clamp(minusOne, two), one).add_(five, one);
        var index = Index();
        void SeedUpdate() // seed_ref.ClassificationMetrics.update, op for op
        {
            var v = Valid();
            var pp = classes.view(-1, 1).eq(pred[v].view(1, -1));
            var tp = classes.view(-1, 1).eq(truth[v].view(1, -1));
            var (pn, tn) = (pp.logical_not(), tp.logical_not());
            _ = (pp.bitwise_and(tp).sum(dim: 1), pp.bitwise_and(tn).sum(dim: 1), pn.bitwise_and(tp).sum(dim: 1), pn.bitwise_and(tn).sum(dim: 1));
        }
        var ops = new (string, Action)[]
        {
            ("metrics valid mask", () => Valid()),
            ("metrics boolean index", () => _ = pred[valid]),
            ("metrics class compare", () => classes.view(-1, 1).eq(p.view(1, -1))),
            ("metrics and-sum", () => pos.bitwise_and(tpos).sum(dim: 1)),
            ("metrics seed update", SeedUpdate),
            ("metrics bincount index", () => Index()),
            ("metrics bincount", () => bincount(index, minlength: 16)),
            ("metrics update (DetSeg ClassificationMetrics)", () => { using var m = new ClassificationMetrics(2); m.Update(pred, truth); }),
        };
        foreach (var (key, op) in ops)
            row(key, CleanTimer.Time(() => { using var s = NewDisposeScope(); op(); }, SmallReps, Warmup, waitIdle: false));
    }
}

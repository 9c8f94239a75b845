using System.Text.Json.Nodes;
using DetSeg.Attention;
using DetSeg.Data;
using DetSeg.Detection;
using DetSeg.Metrics;
using DetSeg.Runtime;
using DetSeg.Segmentation;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Bench;

/// <summary>
/// <c>compare</c>: DetSeg's side of <c>bench/compare</c>. Each row is the work of the row of the same name in
/// <c>../shared/reference/bench.py</c> (or <c>bench/reference_extra.py</c>): same shapes, same model, same
/// repetitions (<c>BENCH_REPS</c>, default 5), same clean-timing protocol (<see cref="CleanTimer"/>); the values are
/// milliseconds, flat, under the reference's own key names, so the two JSONs match by name.
/// </summary>
public sealed class CompareBench : IBenchmark
{
    /// <inheritdoc/>
    public string Name => "compare";

    static readonly int Reps = int.TryParse(Environment.GetEnvironmentVariable("BENCH_REPS"), out var r) && r > 0 ? r : 5;
    const int Warmup = 2;

    // DETSEG_COMPARE_ONLY=unet,yolo runs only those sections (metrics, pf, mc, yolo_train, unet, yolo, attention, vit,
    // matmul): for checking one row without the rest
    static readonly string[]? Only = Environment.GetEnvironmentVariable("DETSEG_COMPARE_ONLY")?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
    static bool On(string section) => Only is null || Only.Contains(section);

    /// <inheritdoc/>
    public void Run(JsonObject result)
    {
        var details = new JsonObject();
        void Row(string key, JsonObject timing)
        {
            details[key] = timing;
            result[key] = timing["median_ms"]!.GetValue<double>();
            Console.Error.WriteLine($"[compare] {key} {result[key]}");
        }
        var cpu = new torch.Device(DeviceType.CPU);
        var dev = Runtime.Device.Default;
        result["reps"] = Reps;
        var roofline = new JsonObject();
        result["roofline"] = roofline;

        // ---- metrics: 2-class predictions vs targets with padding -1, 4x256x256
        if (On("metrics")) {
        manual_seed(0);
        var pred = randint(0, 2, [4, 256, 256]);
        var truth = randint(-1, 2, [4, 256, 256]);
        Row("metrics_update_ms", CleanTimer.Time(() => { using var m = new ClassificationMetrics(2); m.Update(pred, truth); }, Math.Max(Reps, 20), Warmup));
        }

        // ---- Penn-Fudan items at 256 (32 images, every 5th), training (augmented) and eval
        if (On("pf")) try
        {
            var pf = new PennFudan(download: false);
            var idx = Enumerable.Range(0, pf.Count).Where(i => i % Math.Max(1, pf.Count / 32) == 0).Take(32).ToArray();
            var seg = new PFSegmentation(pf, seed: 123, device: cpu) { Training = true };
            void Items() { foreach (int i in idx) foreach (var t in seg[i]) t.Dispose(); }
            Row("pf_item_ms", CleanTimer.Time(Items, Reps, Warmup, per: idx.Length));
            seg.Training = false;
            Row("pf_item_eval_ms", CleanTimer.Time(Items, Reps, Warmup, per: idx.Length));
        }
        catch (DataUnavailableException e) { result["pennfudan"] = "skipped: " + e.Message; }

        // ---- MNIST clutter items at 128 (up to 10 digits), plain and with boxes
        if (On("mc") || On("yolo_train")) try
        {
            var mnist = new MNIST(download: false);
            var clutter = new MNISTClutter(mnist: mnist, device: cpu);
            var det = new MCDetection(clutter);
            if (On("mc")) Row("mc_item_ms", CleanTimer.Time(() => { for (int i = 0; i < 32; i++) foreach (var t in clutter[i]) t.Dispose(); }, Reps, Warmup, per: 32));
            if (On("mc")) Row("mcdet_item_ms", CleanTimer.Time(() => { for (int i = 0; i < 32; i++) foreach (var t in det[i]) t.Dispose(); }, Reps, Warmup, per: 32));

            // ---- YOLOv3(3, 10) heads-only training step on 8 MNIST-clutter images (≤ 3 digits) at 128
            if (On("yolo_train")) {
            manual_seed(0);
            var m10 = new YOLOv3(3, 10, anchorPriors: Anchors.ToPixels(Anchors.Lattice(Anchors.CourseBoxStats().std, Anchors.CourseBoxStats().mean), 128).to(float32)).to(dev);
            Transfer.Freeze(m10, FreezeMode.AllButHeads);
            var loss = new CustomYOLOv3Loss(128, m10.anchors).to(dev);
            var opt = optim.Adam(m10.parameters().Where(p => p.requires_grad), 1e-3);
            var batch = new MCDetection(new MNISTClutter(maxNumDigits: 3, mnist: mnist, device: cpu)).GetBatch(Enumerable.Range(0, 8).ToArray());
            var (images, targets) = (batch[0].to(dev), (batch[1].to(dev), batch[2].to(dev)));
            m10.train();
            Row("yolo_train_step_ms_128_b8", CleanTimer.Time(() =>
            {
                using var s = NewDisposeScope();
                var l = loss.call(m10.call(images), targets);
                opt.zero_grad(); l.backward(); opt.step();
                _ = l.item<float>();
            }, Reps, Warmup));
            }
        }
        catch (DataUnavailableException e) { result["mnist"] = "skipped: " + e.Message; }

        // ---- U-Net (widths 64..1024): training step and inference at 4x3x256x256
        if (On("unet")) {
        manual_seed(0);
        using (var unet = new SemanticSegmentor(3, 2).to(dev))
        {
            var opt = optim.Adam(unet.parameters(), 1e-3);
            var x = randn(4, 3, 256, 256, device: dev);
            var y = randint(-1, 2, [4, 256, 256], device: dev);
            unet.train();
            Row("unet_train_step_ms_256_b4", CleanTimer.Time(() =>
            {
                using var s = NewDisposeScope();
                var l = SegmentationLoss.Compute(unet.call(x), y);
                opt.zero_grad(); l.backward(); opt.step();
            }, Reps, Warmup));
            unet.eval();
            Action infer = () => { using var s = NewDisposeScope(); using var g = no_grad(); unet.call(x); };
            Row("unet_infer_ms_256_b4", CleanTimer.Time(infer, Reps, Warmup));
            roofline["unet_infer_gflop_4x3x256"] = Math.Round(ConvFlops.Count(unet, x).Flops / 1e9, 2);
            unet.WithPrecision(InferencePrecision.BFloat16);
            Row("unet_infer_bf16_ms_256_b4", CleanTimer.Time(infer, Reps, Warmup));
        }
        }

        // ---- YOLOv3(3, 80) forward and detect at 1x3x416x416
        if (On("yolo")) {
        manual_seed(0);
        using (var yolo = new YOLOv3(3, 80).to(dev))
        {
            yolo.eval();
            var x = randn(1, 3, 416, 416, device: dev);
            Row("yolo_forward_ms_416_b1", CleanTimer.Time(() => { using var s = NewDisposeScope(); using var g = no_grad(); yolo.call(x); }, Reps, Warmup));
            Row("yolo_detect_ms_416_b1", CleanTimer.Time(() => { using var s = NewDisposeScope(); yolo.Detect(x); }, Reps, Warmup));
            yolo.Fuse(); // BatchNorm folded into the convs (what Predictor runs)
            Row("yolo_forward_fused_ms_416_b1", CleanTimer.Time(() => { using var s = NewDisposeScope(); using var g = no_grad(); yolo.call(x); }, Reps, Warmup));
            Row("yolo_detect_fused_ms_416_b1", CleanTimer.Time(() => { using var s = NewDisposeScope(); yolo.Detect(x); }, Reps, Warmup));
            yolo.Unfuse();
            roofline["yolo_forward_gflop_416"] = Math.Round(ConvFlops.Count(x, () => yolo.call(x), yolo).Flops / 1e9, 2);
            yolo.WithPrecision(InferencePrecision.BFloat16).Fuse();
            Row("yolo_forward_bf16_ms_416_b1", CleanTimer.Time(() => { using var s = NewDisposeScope(); using var g = no_grad(); yolo.call(x); }, Reps, Warmup));
            Row("yolo_detect_bf16_ms_416_b1", CleanTimer.Time(() => { using var s = NewDisposeScope(); yolo.Detect(x); }, Reps, Warmup));
        }
        }

        // ---- attention block (256, 512, 8) forward on [65 x 32 x 256]
        if (On("attention")) {
        manual_seed(0);
        using (var block = new AttentionBlock(256, 512, 8).to(dev))
        {
            block.eval();
            var x = randn(65, 32, 256, device: dev);
            Row("attention_block_ms", CleanTimer.Time(() => { using var s = NewDisposeScope(); using var g = no_grad(); block.call(x); }, Math.Max(Reps, 20), Warmup));
        }
        }

        // ---- ViT (MNIST config: dim 64, depth 6, 4 heads, patch 7) training step, batch 128, AdamW
        if (On("vit")) {
        manual_seed(0);
        using (var vit = new VisionTransformer(VisionTransformerConfig.MNIST).to(dev))
        {
            vit.train();
            var opt = optim.AdamW(vit.parameters(), lr: 1e-3);
            var x = randn(128, 1, 28, 28, device: dev);
            var y = randint(0, 10, [128], device: dev);
            Row("vit_train_step_ms_b128", CleanTimer.Time(() =>
            {
                using var s = NewDisposeScope();
                opt.zero_grad();
                var l = nn.functional.cross_entropy(vit.call(x), y);
                l.backward(); opt.step();
            }, Math.Max(Reps, 20), Warmup));
        }
        }

        // ---- roofline: achieved GFLOP/s of the conv-heavy forwards next to the machine's dense peak on the same
        // threads, per dtype the fastest of a 2048² matmul (MKL) and two oneDNN convolutions (3x3 256->256 at 52², as
        // YOLOv3's middle; 1x1 512->512 at 52², a GEMM through oneDNN): on AMD CPUs MKL's sgemm falls well short of
        // what oneDNN's conv kernels reach, and a peak below the model's own throughput bounds nothing.
        if (On("matmul")) foreach (var (name, dtype) in new[] { ("float32", ScalarType.Float32), ("bfloat16", ScalarType.BFloat16) })
        {
            using var noGrad = no_grad();
            const long n = 2048;
            var a = randn(n, n, device: dev).to(dtype);
            var b = randn(n, n, device: dev).to(dtype);
            var candidates = new List<(string From, double Flop, Action Run)> { ("matmul 2048²", 2.0 * n * n * n, () => a.matmul(b)) };
            foreach (var (cin, k) in new[] { (256, 3), (512, 1) })
            {
                var conv = nn.Conv2d(cin, cin, k, padding: k / 2, bias: false).to(dtype).to(dev);
                var x = randn(1, cin, 52, 52, device: dev).to(dtype);
                candidates.Add(($"conv {k}x{k} {cin}->{cin} @52", 2.0 * cin * cin * k * k * 52 * 52, () => conv.call(x)));
            }
            double best = 0;
            foreach (var (from, flop, run) in candidates)
            {
                var t = CleanTimer.Time(() => { using var s = NewDisposeScope(); run(); }, Math.Max(Reps, 5), Warmup);
                details[$"peak_{name}_{from}"] = t;
                // the fastest repetition, as a roofline is the best the machine does
                double gflops = flop / (t["min_ms"]!.GetValue<double>() * 1e6);
                if (from.StartsWith("matmul")) roofline[$"matmul_{name}_peak_gflops_per_s"] = Math.Round(gflops, 1);
                if (gflops <= best) continue;
                best = gflops;
                roofline[$"peak_{name}_gflops_per_s"] = Math.Round(gflops, 1);
                roofline[$"peak_{name}_from"] = from;
            }
        }
        double peak = roofline["peak_float32_gflops_per_s"]?.GetValue<double>() ?? double.NaN;
        double bfPeak = roofline["peak_bfloat16_gflops_per_s"]?.GetValue<double>() ?? double.NaN;
        foreach (var (flopKey, msKey, peakOf) in new[]
        {
            ("yolo_forward_gflop_416", "yolo_forward_ms_416_b1", peak), ("yolo_forward_gflop_416", "yolo_forward_bf16_ms_416_b1", bfPeak),
            ("unet_infer_gflop_4x3x256", "unet_infer_ms_256_b4", peak), ("unet_infer_gflop_4x3x256", "unet_infer_bf16_ms_256_b4", bfPeak),
        })
        {
            if (roofline[flopKey] is null || result[msKey] is null || double.IsNaN(peakOf)) continue;
            double gflops = roofline[flopKey]!.GetValue<double>() / (result[msKey]!.GetValue<double>() / 1000);
            string key = msKey.Replace("_ms_", "_");
            roofline[$"{key}_gflops_per_s"] = Math.Round(gflops, 1);
            roofline[$"{key}_fraction_of_peak"] = Math.Round(gflops / peakOf, 3);
        }
        foreach (var (k, v) in roofline) Console.Error.WriteLine($"[compare] roofline {k} {v}");

        var (discardedReps, idleWait) = CleanTimer.Contention;
        result["contention"] = new JsonObject
        {
            ["discarded_reps"] = discardedReps, ["idle_wait_s"] = Math.Round(idleWait, 1), ["foreign_max"] = CleanTimer.ForeignMax,
        };
        result["details"] = details;
    }
}

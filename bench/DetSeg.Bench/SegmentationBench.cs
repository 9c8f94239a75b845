using System.Text.Json.Nodes;
using DetSeg.Segmentation;
using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Bench;

/// <summary>
/// U-Net training step (forward + backward + Adam) and inference at the CPU profile's size (width 16, 4x3x128x128)
/// and the course's (width 64, 4x3x256x256), and RSS after 20 and 200 training steps (memory must stay flat).
/// Env <c>DETSEG_BENCH_REPS</c> overrides the repetitions of the large model (default 5; ~15 s a step on 2 cores).
/// </summary>
public sealed class SegmentationBench : IBenchmark
{
    /// <inheritdoc/>
    public string Name => "segmentation";

    /// <inheritdoc/>
    public void Run(JsonObject result)
    {
        var device = DetSeg.Runtime.Device.Default;
        int bigReps = int.TryParse(Environment.GetEnvironmentVariable("DETSEG_BENCH_REPS"), out var r) ? r : 5;
        result["unet16_4x3x128"] = Case(16, 128, device, reps: 7, warmup: 2);
        result["unet64_4x3x256"] = Case(64, 256, device, reps: bigReps, warmup: 1);
        result["rss_unet16_4x3x128"] = Rss(device);
        result["pytorch_reference_ms"] = new JsonObject
        {
            ["note"] = "../shared/reference/baseline.json, torch 1.13 on this machine kind, 2 threads, quiet machine",
            ["unet_train_step_ms_256_b4_default_blas"] = 29925.5,
            ["unet_train_step_ms_256_b4_openblas"] = 14629.2,
            ["unet_infer_ms_256_b4_default_blas"] = 6582.7,
            ["unet_infer_ms_256_b4_openblas"] = 2376.1,
        };
    }

    static (SemanticSegmentor Model, optim.Optimizer Opt, Tensor X, Tensor Y) Setup(long width, long size, Device device)
    {
        torch.manual_seed(0);
        var model = new SemanticSegmentor(3, 2, width).to(device);
        var opt = Optim.Adam(model.parameters(), 1e-3);
        var x = randn(4, 3, size, size, device: device);
        var y = randint(0, 2, [4, size, size], device: device, dtype: ScalarType.Int64);
        return (model, opt, x, y);
    }

    static void TrainStep(SemanticSegmentor model, optim.Optimizer opt, Tensor x, Tensor y)
    {
        using var scope = NewDisposeScope();
        var loss = SegmentationLoss.Compute(model.call(x), y);
        opt.zero_grad();
        loss.backward();
        opt.step();
        _ = loss.item<float>(); // sync, as the trainer does per batch
    }

    static JsonObject Case(long width, long size, Device device, int reps, int warmup)
    {
        var (model, opt, x, y) = Setup(width, size, device);
        model.train();
        var train = Bench.Time(() => TrainStep(model, opt, x, y), reps, warmup);
        model.eval();
        var infer = Bench.Time(() =>
        {
            using var scope = NewDisposeScope();
            using var grad = no_grad();
            _ = model.call(x).argmax(1).sum().item<long>();
        }, reps, warmup);
        return new JsonObject
        {
            ["params"] = model.parameters().Sum(p => p.numel()),
            ["train_step"] = train,
            ["inference"] = infer,
        };
    }

    static JsonObject Rss(Device device)
    {
        var (model, opt, x, y) = Setup(16, 128, device);
        model.train();
        for (int i = 0; i < 20; i++) TrainStep(model, opt, x, y);
        GC.Collect();
        double after20 = Bench.RssMb();
        for (int i = 20; i < 200; i++) TrainStep(model, opt, x, y);
        GC.Collect();
        double after200 = Bench.RssMb();
        return new JsonObject
        {
            ["rss_mb_after_20_steps"] = after20,
            ["rss_mb_after_200_steps"] = after200,
            ["growth_percent"] = Math.Round(100 * (after200 - after20) / after20, 2),
        };
    }
}

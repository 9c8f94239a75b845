using System.Text.Json.Nodes;
using DetSeg.Attention;
using DetSeg.Detection;
using DetSeg.Segmentation;
using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Bench;

/// <summary>
/// Memory through the <see cref="Trainer"/> (issue 11 item 8): RSS and the managed heap at training steps 20, 100, 200
/// and 1000 of a named run (checkpoints written every epoch, a validation pass every 20 steps) for a U-Net, a YOLOv3 and
/// a ViT on synthetic data at small sizes, and the size of the one best-state copy the trainer holds. The goal: less
/// than 5 % RSS growth from step 100 to step 1000. Env <c>DETSEG_BENCH_STEPS</c> shortens the run (default 1000).
/// </summary>
public sealed class TrainerMemoryBench : IBenchmark
{
    /// <inheritdoc/>
    public string Name => "trainer-memory";

    const int StepsPerEpoch = 20;

    /// <inheritdoc/>
    public void Run(JsonObject result)
    {
        int steps = int.TryParse(Environment.GetEnvironmentVariable("DETSEG_BENCH_STEPS"), out var s) ? s : 1000;
        var device = DetSeg.Runtime.Device.Default;
        string root = Path.Combine(Path.GetTempPath(), $"detseg-membench-{Environment.ProcessId}");
        try
        {
            result["unet16_4x3x64"] = UNet(device, steps, root);
            result["yolov3_smoke_8x3x64"] = Yolo(device, steps, root);
            result["vit_mnist_64x1x28"] = ViT(device, steps, root);
            result["note"] = "rss_mb/managed_mb after that many training steps; each epoch is 20 steps + a validation pass + best.ckpt/last.ckpt; best_state_mb is best.ckpt's size (the copy the trainer keeps in memory)";
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    static JsonObject UNet(Device device, int steps, string root)
    {
        var g = new Generator(0);
        var model = new SemanticSegmentor(3, 2, 16).to(device);
        var batches = Enumerable.Range(0, StepsPerEpoch).Select(_ => new[]
        {
            randn(new long[] { 4, 3, 64, 64 }, generator: g), randint(-1, 2, new long[] { 4, 64, 64 }, generator: g),
        }).ToList();
        var trainer = SegmentationTraining.CreateTrainer(model, Optim.Adam(model.parameters(), 1e-3), device: device);
        return Measure(trainer, batches, batches.Take(2).ToList(), SegmentationTraining.DefaultOptions("unet", patience: null), steps, root);
    }

    static JsonObject Yolo(Device device, int steps, string root)
    {
        var g = new Generator(0);
        var recipe = MnistClutterRecipe.For(new DetSeg.Runtime.Profile(DetSeg.Runtime.ProfileKind.Smoke));
        var (std, mean) = Anchors.CourseBoxStats();
        var model = new YOLOv3(3, 10, recipe.Scale, Anchors.ToPixels(Anchors.Lattice(std, mean), 64).to(float32)).to(device);
        var batches = Enumerable.Range(0, StepsPerEpoch).Select(_ =>
        {
            var wh = rand(new long[] { 8, 3, 2 }, generator: g) * 0.3 + 0.05;
            var xy = rand(new long[] { 8, 3, 2 }, generator: g) * 0.6 + 0.2;
            return new[] { rand(new long[] { 8, 3, 64, 64 }, generator: g), cat([xy, wh], -1), randint(0, 10, new long[] { 8, 3 }, generator: g) };
        }).ToList();
        var optimizer = Optim.Adam(model.parameters(), 1e-3);
        var trainer = DetectionTraining.CreateTrainer(model, optimizer, new CustomYOLOv3Loss(64, model.anchors).to(device), device);
        return Measure(trainer, batches, batches.Take(2).ToList(), DetectionTraining.DefaultOptions(optimizer, (steps + StepsPerEpoch - 1) / StepsPerEpoch, "yolo"), steps, root);
    }

    static JsonObject ViT(Device device, int steps, string root)
    {
        var g = new Generator(0);
        var recipe = new ViTRecipe(Epochs: (steps + StepsPerEpoch - 1) / StepsPerEpoch);
        var model = ViTTraining.CreateModel(VisionTransformerConfig.MNIST, 0, device);
        var batches = Enumerable.Range(0, StepsPerEpoch).Select(_ => new[]
        {
            rand(new long[] { 64, 1, 28, 28 }, generator: g), randint(0, 10, new long[] { 64 }, generator: g),
        }).ToList();
        var optimizer = ViTTraining.CreateOptimizer(model, recipe);
        var trainer = ViTTraining.CreateTrainer(model, optimizer, device);
        return Measure(trainer, batches, batches.Take(2).ToList(), ViTTraining.DefaultOptions(recipe, optimizer, "vit"), steps, root);
    }

    static JsonObject Measure(Trainer trainer, List<Tensor[]> train, List<Tensor[]> val, TrainOptions options, int steps, string root)
    {
        var sink = new Sampler([20, 100, 200, 1000]);
        var o = options with
        {
            Epochs = (steps + StepsPerEpoch - 1) / StepsPerEpoch,
            CheckpointRoot = root,
            Progress = sink,
            Log = TextWriter.Null,
        };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var result = trainer.Train(train, val, o);
        var json = new JsonObject
        {
            ["steps"] = sink.Steps,
            ["epochs"] = result.History.Count,
            ["seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 1),
            ["best_state_mb"] = Math.Round(new FileInfo(Path.Combine(o.RunDirectory!, "best.ckpt")).Length / 1048576.0, 2),
        };
        foreach (var (step, rss, managed) in sink.Samples)
            json[$"step_{step}"] = new JsonObject { ["rss_mb"] = rss, ["managed_mb"] = managed };
        if (sink.Samples.FirstOrDefault(x => x.Step == 100) is { Step: 100 } a && sink.Samples.FirstOrDefault(x => x.Step == 1000) is { Step: 1000 } b)
            json["rss_growth_100_to_1000_pct"] = Math.Round(100 * (b.Rss - a.Rss) / a.Rss, 1);
        Console.Error.WriteLine($"{o.RunName}: {json.ToJsonString()}");
        return json;
    }

    /// <summary>Counts training steps across epochs and samples memory at the chosen ones.</summary>
    sealed class Sampler(int[] at) : IProgressSink
    {
        bool training;
        public int Steps;
        public readonly List<(int Step, double Rss, double Managed)> Samples = [];
        public void Begin(string label, int? total) => training = label.StartsWith(nameof(Phase.Training), StringComparison.Ordinal);
        public void Update(int done, double meanLoss, TimeSpan elapsed)
        {
            if (!training) return;
            Steps++;
            if (at.Contains(Steps)) Samples.Add((Steps, Bench.RssMb(), Math.Round(GC.GetTotalMemory(false) / 1048576.0, 1)));
        }
        public void End(string summary) { }
    }
}

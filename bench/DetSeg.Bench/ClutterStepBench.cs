using System.Diagnostics;
using System.Text.Json.Nodes;
using DetSeg.Data;
using DetSeg.Detection;
using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Bench;

/// <summary>
/// <c>clutter-step</c>: where a step of the MNIST-clutter training recipe (the current profile's) spends its time —
/// rendering a batch (on one thread, as the DataLoader's worker does) with up to 3 digits (validation and test) and up to the recipe's TrainMaxDigits (training), and the
/// step's forward, loss, backward and optimizer phases on the trainer's threads, with the Trainer's ConvGuard and without.
/// Medians of <c>BENCH_REPS</c> (default 15).
/// Needs MNIST under <c>DETSEG_DATA</c>.
/// </summary>
public sealed class ClutterStepBench : IBenchmark
{
    /// <inheritdoc/>
    public string Name => "clutter-step";

    /// <inheritdoc/>
    public void Run(JsonObject result)
    {
        int reps = int.TryParse(Environment.GetEnvironmentVariable("BENCH_REPS"), out var r) && r > 0 ? r : 15;
        var dev = Runtime.Device.Default;
        var recipe = MnistClutterRecipe.Current;
        result["recipe"] = recipe.ToString();
        var mnist = new MNIST();
        var batches = new Dictionary<int, Tensor[]>();
        var digitCounts = new[] { MnistClutterRecipe.MaxNumDigits, recipe.TrainMaxDigits ?? MnistClutterRecipe.MaxNumDigits }.Distinct().ToArray();
        foreach (int k in digitCounts)
        {
            var det = new MCDetection(new MNISTClutter(instance: true, imageSize: MnistClutterRecipe.ImageSize, maxNumDigits: k, mnist: mnist, device: CPU, numImages: 100_000));
            int next = 0;
            int threads = get_num_threads();
            set_num_threads(1);
            try
            {
                result[$"render_batch_ms_max{k}"] = Bench.Time(() =>
                {
                    using var s = NewDisposeScope();
                    det.GetBatch(Enumerable.Range(next, recipe.BatchSize).ToArray());
                    next += recipe.BatchSize;
                }, reps, 2);
            }
            finally { set_num_threads(threads); }
            batches[k] = det.GetBatch(Enumerable.Range(50_000, recipe.BatchSize).ToArray()).Select(t => t.to(dev)).ToArray();
        }

        manual_seed(0);
        var (std, mean) = Anchors.CourseBoxStats();
        var anchors = Anchors.ToPixels(Anchors.Lattice(std, mean), MnistClutterRecipe.ImageSize).to(float32);
        // Two identical models, one guarded as the Trainer guards every model it trains (narrow convs in float64,
        // Runtime/ConvGuard), one left to oneDNN; their steps alternate so that warm-up and drift hit both alike.
        var sides = new[] { true, false }.Select(guarded =>
        {
            manual_seed(0);
            var model = new YOLOv3(3, 10, recipe.Scale, anchors).to(dev);
            if (guarded) Runtime.ConvGuard.Protect(model);
            model.train();
            var loss = recipe.CreateLoss(model.anchors).to(dev);
            return (name: guarded ? "convguard" : "unguarded", model, loss, opt: Optim.Adam(model.parameters(), recipe.LearningRate));
        }).ToArray();
        foreach (int k in digitCounts)
        {
            var b = batches[k];
            var phases = sides.ToDictionary(x => x.name, _ => new Dictionary<string, List<double>> { ["forward"] = [], ["loss"] = [], ["backward"] = [], ["optimizer"] = [], ["step"] = [] });
            for (int i = 0; i < reps + 5; i++)
                foreach (var (name, model, loss, opt) in sides)
                {
                    using var s = NewDisposeScope();
                    var clock = Stopwatch.StartNew();
                    var pred = model.call(b[0]);
                    _ = pred.scores.sum().item<float>();               // syncs (a no-op on the CPU) so phases do not blur on a GPU
                    double tForward = clock.Elapsed.TotalMilliseconds;
                    var l = loss.call(pred, (b[1], b[2]));
                    _ = l.item<float>();
                    double tLoss = clock.Elapsed.TotalMilliseconds;
                    opt.zero_grad();
                    l.backward();
                    double tBackward = clock.Elapsed.TotalMilliseconds;
                    Optim.Step(opt);
                    double tEnd = clock.Elapsed.TotalMilliseconds;
                    if (i < 5) continue;
                    var p = phases[name];
                    p["forward"].Add(tForward); p["loss"].Add(tLoss - tForward); p["backward"].Add(tBackward - tLoss);
                    p["optimizer"].Add(tEnd - tBackward); p["step"].Add(tEnd);
                }
            foreach (var (name, p) in phases)
            {
                var row = new JsonObject();
                foreach (var (phase, v) in p) row[phase + "_ms"] = Math.Round(v.Order().ElementAt(v.Count / 2), 2);
                string key = $"train_step_b{recipe.BatchSize}_max{k}_{name}";
                result[key] = row;
                Console.Error.WriteLine($"[clutter-step] {key}: {row.ToJsonString()}");
            }
        }
    }
}

using System.Diagnostics;
using System.Text.Json.Nodes;
using DetSeg.Data;
using DetSeg.Detection;
using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Bench;

/// <summary>YOLOv3 speed: forward 1x3x416x416, detect (forward + NMS), NMS alone on the 10,647 raw boxes of that
/// forward and on 10,647 random boxes x 80 classes (ours vs TorchVision .NET's nms), and a training step at
/// 8x3x128x128 both as the course ran it (heads only trainable, the baseline's figure) and for the whole model.</summary>
public sealed class DetectionBench : IBenchmark
{
    /// <inheritdoc/>
    public string Name => "detection";

    /// <inheritdoc/>
    public void Run(JsonObject result)
    {
        var dev = DetSeg.Runtime.Device.Default;
        // NMS alone: 10,647 random boxes with random labels over 80 classes, one image (ours). TorchVision's nms has
        // no batched form and loops on the host once per kept box (and grew past 6 GB RSS on 10,647 boxes here), so
        // it is compared side by side on 2,000 boxes with the usual per-class offset trick.
        foreach (int n in new[] { 10647, 2000 })
        {
            // drawn on the CPU, then moved: the same boxes on every device (and no CUDA generator, which crashed the
            // TorchSharp 0.107 binding over a newer CUDA libtorch on the lent GPU machine)
            var gen = new Generator(0);
            var cxcy = rand(new long[] { 1, n, 2 }, generator: gen).to(dev);
            var wh = (rand(new long[] { 1, n, 2 }, generator: gen) * 0.2 + 0.02).to(dev);
            var boxes = BoxOps.CxCyWhToXyxy(cat(new[] { cxcy, wh }, -1));
            var scores = rand(new long[] { 1, n }, generator: gen).to(dev);
            var labels = randint(0, 80, new long[] { 1, n }, generator: gen).to(dev);
            result[$"nms_batched_ms_{n}x80"] = Bench.Time(() => { using var s = NewDisposeScope(); BatchedNms.Keep(boxes, scores, labels, 0.5); }, reps: 5, warmup: 1);
            if (n > 2000) continue;
            var offset = boxes + labels.unsqueeze(-1).to(float32) * 2;
            result[$"nms_torchvision_offset_ms_{n}x80"] = Bench.Time(() => { using var s = NewDisposeScope(); torchvision.ops.nms(offset[0], scores[0], 0.5); }, reps: 3, warmup: 1);
            using (NewDisposeScope())
                result[$"nms_kept_ours_vs_torchvision_{n}"] = $"{BatchedNms.Keep(boxes, scores, labels, 0.5).sum().item<long>()} / {torchvision.ops.nms(offset[0], scores[0], 0.5).shape[0]}";
        }
        result["rss_mb_after_nms"] = Bench.RssMb();

        manual_seed(0);
        var model = new YOLOv3(3, 80).to(dev);
        model.eval();
        var x = randn(1, 3, 416, 416, device: dev);
        result["yolo_forward_ms_416_b1"] = Bench.Time(() => { using var s = NewDisposeScope(); using var g = no_grad(); model.call(x); }, reps: 5, warmup: 1);
        result["yolo_detect_ms_416_b1"] = Bench.Time(() => { using var s = NewDisposeScope(); model.Detect(x); }, reps: 5, warmup: 1);
        using (NewDisposeScope())
        {
            // NMS alone on what Detect feeds it (random weights: dense, heavily overlapping boxes, long suppression chains)
            Tensor rs, rb, rl;
            using (no_grad()) (rs, rb, rl) = model.call(x);
            var (maxProbs, labels) = rl.softmax(-1).max(-1);
            var adjusted = maxProbs * rs.sigmoid();
            var xyxy = BoxOps.CxCyWhToXyxy(rb);
            result["nms_batched_ms_yolo416_outputs"] = Bench.Time(() => { using var s = NewDisposeScope(); BatchedNms.Keep(xyxy, adjusted, labels, 0.6); }, reps: 5, warmup: 1);
            // fewer, larger IoU blocks (fewer host syncs, more memory): what the chunk size buys on this device
            result["nms_batched_ms_yolo416_outputs_chunk64M"] = Bench.Time(() => { using var s = NewDisposeScope(); BatchedNms.Keep(xyxy, adjusted, labels, 0.6, chunkElements: 1L << 26); }, reps: 5, warmup: 1);
            result["nms_kept_yolo416_outputs"] = BatchedNms.Keep(xyxy, adjusted, labels, 0.6).sum().item<long>();
        }

        var m10 = new YOLOv3(3, 10, anchorPriors: Anchors.ToPixels(Anchors.Lattice(Anchors.CourseBoxStats().std, Anchors.CourseBoxStats().mean), 128).to(float32)).to(dev);
        var loss = new CustomYOLOv3Loss(128, m10.anchors).to(dev);
        var xb = rand(8, 3, 128, 128, device: dev);
        var tb = (tensor(new float[] { 0.5f, 0.5f, 0.12f, 0.15f }).repeat(8, 2, 1).to(dev), tensor(new long[] { 1, 7 }).repeat(8, 1).to(dev));
        m10.train();
        foreach (var (mode, key) in new[] { (FreezeMode.AllButHeads, "yolo_train_step_ms_128_b8_heads_only"), (FreezeMode.None, "yolo_train_step_ms_128_b8_whole_model") })
        {
            result[key.Replace("_ms_", "_trainable_params_")] = Transfer.Freeze(m10, mode);
            var opt = Optim.Adam(m10.parameters().Where(p => p.requires_grad), 1e-3);
            result[key] = Bench.Time(() =>
            {
                using var s = NewDisposeScope();
                opt.zero_grad(); var l = loss.call(m10.call(xb), tb); l.backward(); opt.step();
            }, reps: 5, warmup: 2);
        }

        result["rss_mb"] = Bench.RssMb();
    }
}

/// <summary>
/// The quality run of issue 6: YOLOv3 from scratch on MNIST clutter (≤ 3 digits, 128x128) with the current
/// profile's <see cref="MnistClutterRecipe"/>, best epoch by validation mAP@0.5, then mAP on the held-out test split.
/// Needs MNIST under $DETSEG_DATA. For recipe searches, DETSEG_RECIPE overrides fields of the profile's recipe,
/// e.g. <c>DETSEG_RECIPE="Epochs=10;TrainPool=8000;LearningRate=0.002;Width=0.25;Depth=0.25;BatchSize=16"</c>.
/// <c>DETSEG_EMA="decay[,tau]"</c> trains with <see cref="TrainOptions.Ema"/> (validation and selection on the average);
/// <c>DETSEG_EVAL_SWEEP=1</c> picks NMS IoU and single/multi-label on validation for the best checkpoint and tests it with
/// that choice; <c>DETSEG_SAVE_DIR</c> keeps its weights.
/// </summary>
public sealed class DetectionTrainBench : IBenchmark
{
    /// <inheritdoc/>
    public string Name => "detection-train";

    /// <summary>The profile's recipe with the DETSEG_RECIPE overrides applied.</summary>
    internal static MnistClutterRecipe Recipe(string? overrides)
    {
        var r = MnistClutterRecipe.Current;
        foreach (var part in (overrides ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var kv = part.Split('=', 2, StringSplitOptions.TrimEntries);
            if (kv.Length != 2) throw new ArgumentException($"DETSEG_RECIPE: expected Name=value, got '{part}'.");
            var v = kv[1];
            r = kv[0] switch
            {
                "Epochs" => r with { Epochs = int.Parse(v) },
                "TrainImages" => r with { TrainImages = int.Parse(v) },
                "TrainPool" => r with { TrainPool = int.Parse(v) },
                "ValImages" => r with { ValImages = int.Parse(v) },
                "TestImages" => r with { TestImages = int.Parse(v) },
                "BatchSize" => r with { BatchSize = int.Parse(v) },
                "LearningRate" => r with { LearningRate = double.Parse(v, System.Globalization.CultureInfo.InvariantCulture) },
                "Width" => r with { Scale = r.Scale with { Width = double.Parse(v, System.Globalization.CultureInfo.InvariantCulture) } },
                "Depth" => r with { Scale = r.Scale with { Depth = double.Parse(v, System.Globalization.CultureInfo.InvariantCulture) } },
                "Box" => r with { Box = Enum.Parse<BoxLoss>(v) },
                "Objectness" => r with { Objectness = Enum.Parse<ObjectnessTarget>(v) },
                "TrainMaxDigits" => r with { TrainMaxDigits = int.Parse(v) },
                "MultiLabel" => r with { MultiLabel = bool.Parse(v) },
                _ => throw new ArgumentException($"DETSEG_RECIPE: unknown field '{kv[0]}' (Epochs, TrainImages, TrainPool, ValImages, TestImages, BatchSize, LearningRate, Width, Depth, Box, Objectness, TrainMaxDigits, MultiLabel)."),
            };
        }
        return r;
    }

    /// <inheritdoc/>
    public void Run(JsonObject result)
    {
        var dev = DetSeg.Runtime.Device.Default;
        var recipe = Recipe(Environment.GetEnvironmentVariable("DETSEG_RECIPE"));
        result["profile"] = DetSeg.Runtime.Profile.Current.ToString();
        result["recipe"] = recipe.ToString();
        manual_seed(0);
        using var data = recipe.CreateData(dev);

        var (std, mean) = Anchors.CourseBoxStats();
        var anchors = Anchors.ToPixels(Anchors.Lattice(std, mean), MnistClutterRecipe.ImageSize).to(float32);
        var model = new YOLOv3(3, 10, recipe.Scale, anchors).to(dev);
        result["parameters"] = model.parameters().Sum(p => p.numel());
        var loss = recipe.CreateLoss(model.anchors).to(dev);
        var opt = Optim.Adam(model.parameters(), recipe.LearningRate);
        var trainer = DetectionTraining.CreateTrainer(model, opt, loss, dev, recipe.Eval);

        // DETSEG_EMA="decay[,tau]" (tau: ramp-up in steps): the trainer validates, selects and keeps an average of the weights.
        var emaSpec = Environment.GetEnvironmentVariable("DETSEG_EMA") is { Length: > 0 } e
            ? e.Split(',').Select(x => double.Parse(x, System.Globalization.CultureInfo.InvariantCulture)).ToArray() : null;
        var ema = emaSpec is null ? null : new EmaOptions(emaSpec[0], emaSpec.Length > 1 ? emaSpec[1] : 2000);
        var clock = Stopwatch.StartNew();
        var run = trainer.Train(data.Train, data.Val, DetectionTraining.DefaultOptions(opt, recipe.Epochs) with
        {
            Log = Console.Error, Progress = new ConsoleProgress(Console.Error, !Console.IsErrorRedirected), // stdout carries only the JSON
            Ema = ema,
        });
        double trainSeconds = clock.Elapsed.TotalSeconds;
        if (ema is not null) result["ema"] = ema.ToString();

        // DETSEG_EVAL_SWEEP=1: the NMS settings chosen on validation (IoU threshold, one or several labels per box) for the
        // best checkpoint; the test split then evaluates it with that choice.
        if (Environment.GetEnvironmentVariable("DETSEG_EVAL_SWEEP") == "1")
        {
            run.Best!.Restore(model);
            var rows = new JsonObject();
            (DetectionTraining.EvalSettings s, double v)? chosen = null;
            foreach (double iou in new[] { 0.45, 0.5, 0.6, 0.7 })
                foreach (bool multi in new[] { false, true })
                {
                    var settings = new DetectionTraining.EvalSettings(NmsIou: iou, MultiLabel: multi);
                    var t = DetectionTraining.CreateTrainer(model, null, loss, dev, settings);
                    var v = t.OneEpoch(Phase.Validation, data.Val);
                    rows[$"iou{iou}_{(multi ? "multi" : "single")}"] = new JsonObject { ["val_map50"] = Math.Round(v["map50"], 4), ["val_map50_95"] = Math.Round(v["map50_95"], 4) };
                    if (chosen is null || v["map50"] > chosen.Value.v) chosen = (settings, v["map50"]);
                }
            var ct = DetectionTraining.CreateTrainer(model, null, loss, dev, chosen!.Value.s);
            ct.OneEpoch(Phase.Testing, data.Test);
            rows["chosen"] = chosen.Value.s.ToString();
            rows["test_map50"] = Math.Round(ct.Metrics.Map50, 4);
            rows["test_map75"] = Math.Round(ct.Metrics.Map75, 4);
            rows["test_map50_95"] = Math.Round(ct.Metrics.Map50To95, 4);
            Console.Error.WriteLine($"{chosen.Value.s}:\n{ct.Metrics}");
            result["eval_sweep"] = rows;
            if (Environment.GetEnvironmentVariable("DETSEG_SAVE_DIR") is { Length: > 0 } dir)
            {
                Directory.CreateDirectory(dir);
                model.save(Path.Combine(dir, "yolo-clutter.dat"));
            }
        }
        run.Best!.Restore(model);
        trainer.OneEpoch(Phase.Testing, data.Test);
        var eval = trainer.Metrics;
        result["train_seconds"] = Math.Round(trainSeconds, 1);
        result["best_epoch"] = run.BestEpoch;
        result["val_map50_per_epoch"] = new JsonArray(run.Series(Phase.Validation, "map50").Select(v => (JsonNode)Math.Round(v, 4)).ToArray());
        result["val_map50_95_per_epoch"] = new JsonArray(run.Series(Phase.Validation, "map50_95").Select(v => (JsonNode)Math.Round(v, 4)).ToArray());
        result["train_loss_per_epoch"] = new JsonArray(run.Series(Phase.Training, "loss").Select(v => (JsonNode)Math.Round(v / recipe.BatchSize, 3)).ToArray());
        result["val_loss_per_epoch"] = new JsonArray(run.Series(Phase.Validation, "loss").Select(v => (JsonNode)Math.Round(v / 100, 3)).ToArray());
        result["loss_note"] = "per image: the course's loss is a sum over the batch (16 in training, 100 in validation)";
        result["test_images"] = eval.NumImages;
        result["test_map50"] = Math.Round(eval.Map50, 4);
        result["test_map75"] = Math.Round(eval.Map75, 4);
        result["test_map50_95"] = Math.Round(eval.Map50To95, 4);
        Console.Error.WriteLine(eval.ToString());
        result["rss_mb"] = Bench.RssMb();
    }
}

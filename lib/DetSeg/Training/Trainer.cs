using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using DetSeg.Metrics;
using DetSeg.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Training;

/// <summary>
/// One batch of work: given the batch (already on the trainer's device) and the phase, run the model,
/// update your metrics object, and return the scalar loss. The trainer does <c>zero_grad</c>,
/// <c>backward</c> and <c>step</c>, so do not call them here.
/// </summary>
public delegate Tensor TrainingStep(Tensor[] batch, Phase phase);

/// <summary>
/// The shared training loop of DetSeg (segmentation, detection and attention use it): the course's
/// <c>one_epoch</c>/<c>train</c> with best-checkpoint selection, early stopping, NaN stop, LR scheduling,
/// atomic checkpoints, exact resume and live progress.
/// </summary>
/// <example>
/// Each task wraps this class the same way — <c>Step</c>, <c>DefaultOptions</c>, <c>CreateTrainer</c> (see
/// <c>SegmentationTraining</c>, <c>DetectionTraining</c>, <c>ViTTraining</c>):
/// <code>
/// var model = new SemanticSegmentor(3, 2, width: 16).to(device);
/// var optimizer = Optim.Adam(model.parameters(), lr: 1e-3);       // torch.optim.Adam with a GC-safe step
/// var trainer = SegmentationTraining.CreateTrainer(model, optimizer, numClasses: 2, device: device);
/// var result = trainer.Train(trainLoader, valLoader, SegmentationTraining.DefaultOptions(runName: "unet16"));
/// result.Best!.Restore(model);                                   // best weights, not the last
/// var test = trainer.OneEpoch(Phase.Testing, testLoader);        // test["mean_iou"], test.Loss
/// Console.WriteLine(trainer.Metrics);                            // the test pass's table
/// // after a crash or kernel restart: rebuild model, optimizer and trainer, then
/// // trainer.Resume(trainLoader, valLoader, sameOptions) continues from checkpoints/unet16/last.ckpt.
/// </code>
/// A step of one's own: <c>new Trainer(model, optimizer, (batch, phase) => { …; metrics.Update(…); return loss; }, metrics, device)</c>.
/// </example>
public class Trainer
{
    /// <summary>The model; the trainer switches it between train and eval mode.</summary>
    public nn.Module Model { get; }

    /// <summary>The optimizer stepped in <see cref="Phase.Training"/>; null for evaluation-only use.</summary>
    /// <remarks>
    /// Stepped through <see cref="Optim.Step"/>: DetSeg's <see cref="Optim"/> optimizers and TorchSharp's own Adam, AdamW
    /// and SGD get a step that a garbage collection on another thread cannot break (TorchSharp 0.107's steps pass
    /// temporary Scalars that a GC can free mid-call); any other optimizer runs its own <c>step()</c> after a one-time
    /// warning. Prefer <c>Optim.Adam(…)</c>, which is also safe in loops of one's own.
    /// </remarks>
    public optim.Optimizer? Optimizer { get; }

    /// <summary>The per-batch step.</summary>
    public TrainingStep Step { get; }

    /// <summary>
    /// The metrics object the step updates: the trainer calls <see cref="IMetricSet.Reset"/> before every pass and
    /// <see cref="IMetricSet.Values"/> once after it, and adds <c>"loss"</c> and <c>"num_images"</c> itself (do not
    /// report those names). Tensors it keeps across batches must leave the per-batch dispose scope
    /// (<c>MoveToOuterDisposeScope()</c>, or host arrays).
    /// </summary>
    public IMetricSet Metrics { get; }

    /// <summary>Where batches are moved before the step (the model must already be there).</summary>
    public torch.Device Device { get; }

    /// <summary>When set, gradients are clipped to this total norm before each optimizer step.</summary>
    public double? MaxGradNorm { get; init; }

    // The average that Train/Resume keep when TrainOptions.Ema is set; OneEpoch folds every optimizer step into it.
    ModelEma? ema;

    /// <summary>Creates a trainer. <paramref name="device"/> defaults to <see cref="Runtime.Device.Default"/>.</summary>
    public Trainer(nn.Module model, optim.Optimizer? optimizer, TrainingStep step, IMetricSet? metrics = null, torch.Device? device = null)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Runtime.ConvGuard.Protect(model); // also models built outside DetSeg (notebook cells): see ConvGuard
        Step = step ?? throw new ArgumentNullException(nameof(step));
        Optimizer = optimizer;
        Metrics = metrics ?? new NoMetrics();
        Device = device ?? Runtime.Device.Default;
    }

    /// <summary>
    /// One pass over <paramref name="loader"/> (the course's <c>one_epoch</c>): per batch a dispose scope,
    /// the step, and in <see cref="Phase.Training"/> backward + optimizer step. Returns the image-weighted
    /// mean loss, the image count and the metrics object's figures. A non-finite training loss stops the
    /// pass before the optimizer steps on it (<see cref="EpochResult.NonFiniteLoss"/>).
    /// </summary>
    /// <exception cref="InvalidOperationException">Training without an optimizer, the step returned a non-scalar loss, or the
    /// loader yielded no batch (an empty dataset, or fewer items than one batch with <c>dropLast</c>).</exception>
    public EpochResult OneEpoch(Phase phase, IEnumerable<Tensor[]> loader, int epoch = 0, IProgressSink? progress = null)
    {
        ArgumentNullException.ThrowIfNull(loader);
        bool training = phase == Phase.Training;
        if (training && Optimizer is null)
            throw new InvalidOperationException("Phase.Training needs an optimizer: pass one to the Trainer constructor.");
        progress ??= Progress.None;
        var clock = Stopwatch.StartNew();
        Metrics.Reset();
        Model.train(training);
        double lossSum = 0;
        long images = 0;
        var batchLosses = new List<double>();
        int batches = 0;
        bool nonFinite = false;
        progress.Begin($"{phase} {epoch}", CountOf(loader));
        using (var grad = torch.set_grad_enabled(training))
        using (var e = loader.GetEnumerator())
        {
            while (true)
            {
                // The scope opens before MoveNext so that tensors the loader builds for this batch are freed with it.
                using var scope = torch.NewDisposeScope();
                if (!e.MoveNext()) break;
                var batch = e.Current.Select(t => t.to(Device)).ToArray();
                long n = batch.Length == 0 || batch[0].dim() == 0 ? 1 : batch[0].shape[0];
                var loss = Step(batch, phase);
                if (loss.numel() != 1)
                    throw new InvalidOperationException($"The training step must return a scalar loss; it returned shape [{string.Join(", ", loss.shape)}].");
                // Not ToDouble(): TorchSharp's goes through a temporary Scalar that a GC on another thread can free mid-read.
                double value = loss.detach().to(ScalarType.Float64).item<double>();
                if (!double.IsFinite(value)) nonFinite = true;
                if (training)
                {
                    // Stop before backward: stepping on NaN gradients would destroy the weights we keep.
                    if (nonFinite) { lossSum += value * n; images += n; batchLosses.Add(value); break; }
                    Optimizer!.zero_grad();
                    loss.backward();
                    if (MaxGradNorm is double max) nn.utils.clip_grad_norm_(Model.parameters(), max);
                    Optim.Step(Optimizer);   // GC-safe also for torch.optim's Adam/AdamW/SGD (TORCHSHARP-NOTES.md)
                    ema?.Update();
                }
                lossSum += value * n;
                images += n;
                batches++;
                if (training) batchLosses.Add(value);
                progress.Update(batches, lossSum / images, clock.Elapsed);
            }
        }
        if (batches == 0 && !nonFinite)
            throw new InvalidOperationException($"The {phase} loader yielded no batch{(epoch > 0 ? $" in epoch {epoch}" : "")}: the dataset is empty, " +
                "or it holds fewer items than one batch and the loader drops the last, incomplete one (dropLast). A pass over nothing has no loss to report.");
        var metrics = new Dictionary<string, double> { ["loss"] = images > 0 ? lossSum / images : double.NaN };
        foreach (var (k, v) in Metrics.Values()) metrics[k] = v;
        metrics["num_images"] = images;
        var result = new EpochResult(phase, epoch, metrics, clock.Elapsed.TotalSeconds, nonFinite) { BatchLosses = batchLosses };
        progress.End(result.ToString());
        return result;
    }

    /// <summary>
    /// The course's <c>train</c>: up to <see cref="TrainOptions.Epochs"/> epochs of training then validation,
    /// keeping the best checkpoint by <see cref="TrainOptions.Monitor"/> (in memory and, for a named run, on
    /// disk), stopping early after <see cref="TrainOptions.Patience"/> epochs without improvement or at once on
    /// a NaN/infinite training or validation loss or weights (the reason is printed). Starts from scratch: a named run's
    /// files are replaced. A named run holds its folder's <see cref="RunLock"/> until it returns.
    /// </summary>
    /// <exception cref="IOException">Another run holds the run folder; the message names its process.</exception>
    /// <exception cref="InvalidOperationException">A loader yielded no batch.</exception>
    public TrainResult Train(IEnumerable<Tensor[]> trainLoader, IEnumerable<Tensor[]>? valLoader, TrainOptions? options = null)
    {
        options ??= new TrainOptions();
        Validate(valLoader, options);
        // Locked before anything is deleted: a second run with the same name fails here instead of taking turns.
        using var runLock = options.RunDirectory is string dir ? RunLock.Acquire(dir) : null;
        if (runLock is not null)
            foreach (var f in new[] { "best.ckpt", "last.ckpt", "metrics.json" })
                File.Delete(Path.Combine(runLock.Directory, f));
        using var average = options.Ema is { } e ? new ModelEma(Model, e.Decay, e.Tau) : null;
        return Loop(trainLoader, valLoader, options, [], null, double.NaN, 0, average);
    }

    /// <summary>
    /// Continues a named run from <c>last.ckpt</c> (model, optimizer, random generator, patience counter and
    /// history), so that an interrupted run ends with the same weights as an uninterrupted one. Build the model,
    /// optimizer, loaders (same seeds) and a fresh scheduler exactly as for <see cref="Train"/>, then call this with
    /// the same options. Exact when the data's randomness comes from torch's default generator (restored) or from a
    /// loader generator advanced once per enumeration, like <c>DataLoader</c>'s shuffle (replayed); background
    /// workers that draw random augmentations concurrently make any run, resumed or not, non-repeatable.
    /// </summary>
    /// <exception cref="ArgumentException">The options name no run.</exception>
    /// <exception cref="FileNotFoundException">The run has no <c>last.ckpt</c> yet.</exception>
    /// <exception cref="IOException">Another run holds the run folder (see <see cref="RunLock"/>).</exception>
    public TrainResult Resume(IEnumerable<Tensor[]> trainLoader, IEnumerable<Tensor[]>? valLoader, TrainOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        string dir = options.RunDirectory ?? throw new ArgumentException("Resume needs TrainOptions.RunName: the run's folder holds last.ckpt.", nameof(options));
        Validate(valLoader, options);
        using var runLock = RunLock.Acquire(dir);
        var last = Checkpoint.Load(Path.Combine(dir, "last.ckpt"));
        if (last.HasTrainingWeights != options.Ema is not null)
            throw new ArgumentException(last.HasTrainingWeights
                ? $"'{last.Source}' comes from a run that averaged its weights: resume it with the same TrainOptions.Ema."
                : $"'{last.Source}' comes from a run without an average of its weights: resume it without TrainOptions.Ema (or train anew with it).", nameof(options));
        // Replay the schedule on the fresh optimizer first; the saved optimizer state then overwrites the rest.
        for (int i = 0; i <= last.Epoch; i++) options.Scheduler?.step();
        last.Restore(Model, Optimizer, restoreRng: true, generators: options.Generators);
        // The model block holds the average: it seeds the resumed average, then the live weights replace it in the model.
        using var average = options.Ema is { } e ? new ModelEma(Model, e.Decay, e.Tau) : null;
        if (average is not null)
        {
            average.SetUpdates((long)last.Extra["ema_updates"]);
            last.RestoreTrainingWeights(Model);
        }
        // Loaders that shuffle with their own generator (DataLoader) advance it once per enumeration: start and
        // drop one enumeration per finished epoch so the resumed epochs see the same orders. Lazy loaders do no work here.
        for (int i = 0; i <= last.Epoch; i++)
        {
            using (trainLoader.GetEnumerator()) { }
            if (valLoader is not null) using (valLoader.GetEnumerator()) { }
        }
        var history = new List<EpochLog>();
        string metricsPath = Path.Combine(dir, "metrics.json");
        var saved = File.Exists(metricsPath) ? JsonNode.Parse(File.ReadAllText(metricsPath)) : null;
        // A run that stopped on a non-finite value keeps last.ckpt at its last healthy epoch; metrics.json says why it stopped.
        bool diverged = saved?["stop_reason"]?.GetValue<string>() == nameof(StopReason.NonFiniteLoss);
        if (saved is not null)
            history = TrainResult.ParseHistory(saved).Where(h => diverged || h.Epoch <= last.Epoch).ToList();
        string bestPath = Path.Combine(dir, "best.ckpt");
        var best = File.Exists(bestPath) ? Checkpoint.Load(bestPath) : null;
        Log(options).WriteLine($"Resuming '{options.RunName}' after epoch {last.Epoch} (best {Describe(best?.Extra["best_value"] ?? double.NaN)} at epoch {best?.Epoch ?? -1}).");
        int since = (int)last.Extra["since_best"];
        (StopReason Reason, string Message)? done =
            diverged ? (StopReason.NonFiniteLoss, "The run stopped on a non-finite loss or weights: nothing to resume (train again, e.g. with a lower learning rate).")
            : last.Epoch + 1 >= options.Epochs ? (StopReason.Completed, $"The run already has {last.Epoch + 1} of {options.Epochs} epochs: nothing to resume (raise Epochs to train longer).")
            : options.Patience is int p && since >= p ? (StopReason.EarlyStopping, $"The run stopped early ({since} epochs without improvement, patience {p}): nothing to resume.")
            : null;
        if (done is var (reason, doneMessage))
        {
            Log(options).WriteLine(doneMessage);
            return new TrainResult { History = history, Best = best, StopReason = reason, StopMessage = doneMessage, Options = options };
        }
        return Loop(trainLoader, valLoader, options, history, best, last.Extra["best_value"], since, average);
    }

    TrainResult Loop(IEnumerable<Tensor[]> trainLoader, IEnumerable<Tensor[]>? valLoader, TrainOptions o,
        List<EpochLog> history, Checkpoint? best, double bestValue, int sinceBest, ModelEma? average)
    {
        ema = average;
        try { return LoopEpochs(trainLoader, valLoader, o, history, best, bestValue, sinceBest); }
        finally
        {
            ema = null;
            // The run's activations are free now: give the memory kept for its steps back (see NativeHeap).
            NativeHeap.Release();
        }
    }

    TrainResult LoopEpochs(IEnumerable<Tensor[]> trainLoader, IEnumerable<Tensor[]>? valLoader, TrainOptions o,
        List<EpochLog> history, Checkpoint? best, double bestValue, int sinceBest)
    {
        // Without an explicit log the run shows itself through a training display (a live notebook output, or one
        // line per epoch); the course's full per-epoch log goes to TrainOptions.Log when set (TrainResult.PrintLog prints it later).
        var progress = o.Progress ?? (o.Log is null ? TrainingDisplay.Auto() : Progress.Auto());
        var observer = progress as ITrainingObserver;
        var log = o.Log ?? (observer is null ? Console.Out : TextWriter.Null);
        observer?.RunStarted(o, history);
        string monitorName = $"{(o.MonitorPhase == Phase.Training ? "train" : "val")} {o.Monitor}";
        var stop = StopReason.Completed;
        string message = $"Completed {o.Epochs} epochs.";
        for (int epoch = history.Count == 0 ? 0 : history[^1].Epoch + 1; epoch < o.Epochs; epoch++)
        {
            log.WriteLine($"Epoch: {epoch}".PadRight(11) + new string('#', 42));
            double lr = Optimizer?.ParamGroups.FirstOrDefault()?.LearningRate ?? double.NaN;
            var train = OneEpoch(Phase.Training, trainLoader, epoch, progress);
            EpochResult? val = null;
            bool averageFinite = true;
            if (valLoader is not null && !train.NonFiniteLoss)
            {
                // With an average, validation (and so model selection) sees the averaged weights; the live ones come back after.
                ema?.Swap();
                try
                {
                    val = OneEpoch(Phase.Validation, valLoader, epoch, progress);
                    if (ema is not null) averageFinite = StateIsFinite(Model);
                }
                finally { ema?.Swap(); }
            }
            log.WriteLine($"TRAINING:   {train}");
            if (val is not null) log.WriteLine($"VALIDATION: {val}");

            double current = (o.MonitorPhase == Phase.Training ? train : val)?[o.Monitor] ?? double.NaN;
            // A diverged epoch is never "best", whatever its metric says (a NaN validation loss can come with a fine
            // IoU), and its state is never saved: NaN weights or BatchNorm buffers would poison best.ckpt and last.ckpt.
            string? divergence = train.NonFiniteLoss ? null
                : val is not null && !double.IsFinite(val.Loss) ? $"validation loss {Describe(val.Loss)}"
                : !StateIsFinite(Model) ? "non-finite weights or buffers"
                : !averageFinite ? "non-finite averaged weights or buffers" : null;
            bool healthy = !train.NonFiniteLoss && divergence is null;
            // Ties count as improvement, as the course's `>=`: later equal weights have seen more data.
            bool improved = healthy && double.IsFinite(current) && (double.IsNaN(bestValue) || (o.HigherIsBetter ? current >= bestValue : current <= bestValue));
            if (improved) { bestValue = current; sinceBest = 0; }
            else sinceBest++;
            var entry = new EpochLog(epoch, train, val, lr, improved);
            history.Add(entry);
            var extra = new Dictionary<string, double> { ["best_value"] = bestValue, ["since_best"] = sinceBest, ["lr"] = lr };
            if (ema is not null) extra["ema_updates"] = ema.Updates;
            o.Scheduler?.step();
            // One snapshot per epoch, taken after the schedule stepped (the optimizer then holds the next epoch's learning
            // rate, which a resume needs), serves as best and as last; the trainer holds the best one only.
            var snapshot = healthy && (improved || o.RunDirectory is not null)
                ? Checkpoint.Capture(Model, Optimizer, epoch, Flatten(entry), extra, o.Generators, ema) : null;
            if (improved)
            {
                best = snapshot;
                if (o.RunDirectory is string d) best!.Save(Path.Combine(d, "best.ckpt"));
            }
            log.WriteLine($"{monitorName} = {Describe(current)}{(improved ? "  (new best)" : $"  (best {Describe(bestValue)} at epoch {best?.Epoch}, {sinceBest} epoch(s) ago)")}");

            if (o.RunDirectory is string dir)
            {
                // metrics.json first: a crash between the two writes leaves an extra epoch that Resume drops.
                Runtime.AtomicFile.WriteAllText(Path.Combine(dir, "metrics.json"), TrainResult.ToJsonNode(history, o, best, null).ToJsonString(new() { WriteIndented = true }));
                snapshot?.Save(Path.Combine(dir, "last.ckpt"));
            }
            observer?.EpochEnded(entry, best?.Epoch ?? -1, bestValue);
            // A snapshot is tens of MB of large-object-heap arrays (weights + optimizer state); one that is not the best,
            // or the best it replaced, is garbage now. Collect it before the next epoch allocates another: left to the
            // runtime, a U-Net run's managed heap grew 1.8 -> 144 MB over 10 epochs (bench trainer-memory).
            if (snapshot is not null) GC.Collect();
            o.OnEpoch?.Invoke(entry);

            if (!healthy)
            {
                (stop, message) = (StopReason.NonFiniteLoss, train.NonFiniteLoss
                    ? $"Reached invalid loss ({Describe(train.Loss)}) in epoch {epoch}: no point in continuing; the best checkpoint is epoch {best?.Epoch ?? -1}."
                    : $"Reached invalid state ({divergence}) in epoch {epoch}: no point in continuing; the best checkpoint is epoch {best?.Epoch ?? -1}.");
                break;
            }
            if (o.Patience is int p && sinceBest >= p)
            {
                (stop, message) = (StopReason.EarlyStopping, $"No improvement in {monitorName} for {p} epochs (best {Describe(bestValue)} at epoch {best?.Epoch}): stopping early.");
                break;
            }
        }
        log.WriteLine(message);
        log.Flush();
        var result = new TrainResult { History = history, Best = best, StopReason = stop, StopMessage = message, Options = o };
        if (o.RunDirectory is string run)
            Runtime.AtomicFile.WriteAllText(Path.Combine(run, "metrics.json"), result.ToJson());
        observer?.RunEnded(result);
        // The run's batches, activations and replaced snapshots are garbage now, much of it in glibc arenas of loader
        // worker threads: handed back here, a notebook cell that trains leaves the kernel's RSS near its working set
        // instead of at the run's peak (bench/notebooks/rerun-training.ipynb, README "Rerunning a training cell").
        // Only in a notebook kernel, the long-lived process this is for: a forced GC while other threads run torch
        // code widens TorchSharp's temporary-Scalar hazard (Runtime/TORCHSHARP-NOTES.md, 2), e.g. parallel tests.
        if (Runtime.LiveOutput.IsAvailable) TrainingRun.ReturnFreedMemory();
        return result;
    }

    static Dictionary<string, double> Flatten(EpochLog e)
    {
        var d = e.Train.Metrics.ToDictionary(kv => "train/" + kv.Key, kv => kv.Value);
        if (e.Validation is not null)
            foreach (var (k, v) in e.Validation.Metrics) d["val/" + k] = v;
        return d;
    }

    void Validate(IEnumerable<Tensor[]>? valLoader, TrainOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        if (Optimizer is null) throw new InvalidOperationException("Training needs an optimizer: pass one to the Trainer constructor.");
        if (o.MonitorPhase == Phase.Validation && valLoader is null)
            throw new ArgumentException($"TrainOptions.MonitorPhase is Validation but no validation loader was given: pass one, or set MonitorPhase = Phase.Training.", nameof(valLoader));
        if (o.MonitorPhase == Phase.Testing)
            throw new ArgumentException("Model selection on the test set is not allowed: monitor Validation (or Training).", nameof(o));
        if (o.Epochs < 0 || o.Patience is < 1)
            throw new ArgumentException($"Epochs must be ≥ 0 and Patience ≥ 1 (got {o.Epochs}, {o.Patience}).", nameof(o));
    }

    static TextWriter Log(TrainOptions o) => o.Log ?? Console.Out;

    static string Describe(double v) => double.IsNaN(v) ? "n/a" : v.ToString("0.0000", CultureInfo.InvariantCulture);

    // DataLoader is an IReadOnlyCollection; lazy sequences give no total (the bar then counts up).
    static int? CountOf(IEnumerable<Tensor[]> loader) =>
        loader.TryGetNonEnumeratedCount(out int n) ? n : loader is IReadOnlyCollection<Tensor[]> c ? c.Count : null;

    /// <summary>Whether every floating-point parameter and buffer is finite (one device sync).</summary>
    static bool StateIsFinite(nn.Module model)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var bad = model.parameters().Cast<Tensor>().Concat(model.buffers()).Where(t => t.is_floating_point())
            .Select(t => t.isfinite().logical_not().any()).ToArray();
        return bad.Length == 0 || !torch.stack(bad).any().item<bool>();
    }
}

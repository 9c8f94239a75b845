using static TorchSharp.torch;

namespace DetSeg.Training;

/// <summary>How <see cref="Trainer.Train"/> runs: epochs, model selection, early stopping, checkpoints, logging.</summary>
/// <remarks>Defaults follow the course: 30 epochs, patience 5, select by <c>&gt;=</c>/<c>&lt;=</c> (ties count as improvement).</remarks>
public sealed record TrainOptions
{
    /// <summary>Most epochs to run (counting epochs already done before a resume).</summary>
    public int Epochs { get; init; } = 30;

    /// <summary>The metric that picks the best checkpoint, as named by the metrics object (or <c>"loss"</c>).</summary>
    public string Monitor { get; init; } = "loss";

    /// <summary>Whose figure is monitored: <see cref="Phase.Validation"/> (default; needs a validation loader) or <see cref="Phase.Training"/>.</summary>
    public Phase MonitorPhase { get; init; } = Phase.Validation;

    /// <summary>True when a larger <see cref="Monitor"/> is better (IoU, mAP, accuracy); false for losses.</summary>
    public bool HigherIsBetter { get; init; }

    /// <summary>Stop after this many epochs in a row without improvement; null never stops early.</summary>
    public int? Patience { get; init; } = 5;

    /// <summary>Stepped once after every epoch. On <see cref="Trainer.Resume"/> pass a fresh one: it is replayed to the resumed epoch.</summary>
    public optim.lr_scheduler.LRScheduler? Scheduler { get; init; }

    /// <summary>When set, checkpoints go to <c>{CheckpointRoot}/{RunName}/</c>: <c>best.ckpt</c>, <c>last.ckpt</c> and <c>metrics.json</c>. Null keeps everything in memory.</summary>
    public string? RunName { get; init; }

    /// <summary>The folder holding one sub-folder per run.</summary>
    public string CheckpointRoot { get; init; } = "checkpoints";

    /// <summary>
    /// Per-batch progress. Null picks <see cref="TrainingDisplay.Auto"/> (one live notebook output with a table and
    /// curves, or one console line per epoch) when <see cref="Log"/> is null too, else <see cref="Progress.Auto"/>.
    /// A sink that is an <see cref="ITrainingObserver"/> also hears about epochs and the end of the run.
    /// </summary>
    public IProgressSink? Progress { get; init; }

    /// <summary>
    /// Where the course's full per-epoch log (every figure of both phases) and the stop reason are written. Null: not
    /// written while training when the progress sink is a training display (the default; <see cref="TrainResult.PrintLog"/>
    /// prints it afterwards), else to <see cref="Console.Out"/>. <see cref="TextWriter.Null"/> silences.
    /// </summary>
    public TextWriter? Log { get; init; }

    /// <summary>
    /// Generators besides torch's default one whose state a resume must restore — e.g. a dataset's augmentation
    /// generator — saved in every checkpoint and restored by <see cref="Trainer.Resume"/> in this order.
    /// </summary>
    public IReadOnlyList<Generator>? Generators { get; init; }

    /// <summary>
    /// When set, an exponential moving average of the weights (<see cref="ModelEma"/>) follows every optimizer step, and
    /// validation, model selection and checkpoints use the averaged weights: <c>result.Best.Restore(model)</c> loads
    /// them. The live weights keep training (a resume continues both). Null: no average (the course's).
    /// </summary>
    public EmaOptions? Ema { get; init; }

    /// <summary>Called after every epoch (after checkpoints are written), e.g. to redraw live curves.</summary>
    public Action<EpochLog>? OnEpoch { get; init; }

    /// <summary>The run's folder, or null when <see cref="RunName"/> is null.</summary>
    public string? RunDirectory => RunName is null ? null : Path.Combine(CheckpointRoot, RunName);
}

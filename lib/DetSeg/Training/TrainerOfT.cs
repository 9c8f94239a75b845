using DetSeg.Metrics;
using static TorchSharp.torch;

namespace DetSeg.Training;

/// <summary>
/// A <see cref="Trainer"/> whose metrics object has its task's type, so that after a pass its tables and curves
/// are one property away (<c>trainer.Metrics.ToString()</c> after <c>trainer.OneEpoch(Phase.Testing, loader)</c>).
/// The step and the trainer share this one object: each task's <c>CreateTrainer</c> builds both from it.
/// </summary>
/// <typeparam name="TMetrics">The task's metrics: <see cref="ClassificationMetrics"/>, <c>MeanAveragePrecision</c>, …</typeparam>
public sealed class Trainer<TMetrics> : Trainer where TMetrics : IMetricSet
{
    /// <summary>Creates a trainer whose <paramref name="step"/> updates <paramref name="metrics"/>.</summary>
    public Trainer(nn.Module model, optim.Optimizer? optimizer, TrainingStep step, TMetrics metrics, Device? device = null)
        : base(model, optimizer, step, metrics ?? throw new ArgumentNullException(nameof(metrics)), device) =>
        Metrics = metrics;

    /// <summary>The metrics object of the last pass (after a test pass: the test figures and tables).</summary>
    public new TMetrics Metrics { get; }
}

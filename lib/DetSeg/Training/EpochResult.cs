namespace DetSeg.Training;

/// <summary>What one pass over a loader produced: the loss, the image count and the task's metrics.</summary>
/// <param name="Phase">Which phase ran.</param>
/// <param name="Epoch">0-based epoch index (0 for a stand-alone <see cref="Trainer.OneEpoch"/>).</param>
/// <param name="Metrics">All figures by name, including <c>"loss"</c> and <c>"num_images"</c>.</param>
/// <param name="Seconds">Wall time of the pass.</param>
/// <param name="NonFiniteLoss">A batch produced a NaN or infinite loss; the pass stopped there and the optimizer did not step on it.</param>
public sealed record EpochResult(Phase Phase, int Epoch, IReadOnlyDictionary<string, double> Metrics, double Seconds, bool NonFiniteLoss = false)
{
    /// <summary>
    /// Every training batch's loss, in order (empty outside <see cref="Phase.Training"/>): the trainer reads each loss
    /// once for its NaN check anyway, so curves finer than one point per epoch cost no extra device sync.
    /// </summary>
    public IReadOnlyList<double> BatchLosses { get; init; } = [];

    /// <summary>The image-weighted mean loss of the pass.</summary>
    public double Loss => Metrics["loss"];

    /// <summary>How many images (first dimension of the batches' first tensor) the pass saw.</summary>
    public long NumImages => (long)Metrics["num_images"];

    /// <summary>A figure by name.</summary>
    /// <exception cref="KeyNotFoundException">The metrics object does not report <paramref name="name"/>; the message lists what it does report.</exception>
    public double this[string name] => Metrics.TryGetValue(name, out var v) ? v
        : throw new KeyNotFoundException($"No metric '{name}' in the {Phase} results; known: {string.Join(", ", Metrics.Keys)}.");

    /// <summary>One line, e.g. <c>loss=0.3312 mean_iou=0.7012 num_images=136</c>. Figures that are NaN other than the
    /// loss are left out: they were not measured in this phase (mAP while training) and only cluttered the log.</summary>
    public override string ToString() =>
        string.Join(' ', Metrics.Where(kv => kv.Key == "loss" || !double.IsNaN(kv.Value))
                                .Select(kv => kv.Key == "num_images" ? $"{kv.Key}={kv.Value:0}" : $"{kv.Key}={kv.Value:0.0000}"));
}

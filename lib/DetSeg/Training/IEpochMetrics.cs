namespace DetSeg.Training;

/// <summary>
/// What a task measures over one epoch, as named doubles (<c>"mean_iou"</c>, <c>"map50"</c>, <c>"accuracy"</c>…).
/// The trainer calls <see cref="Reset"/> before an epoch, your step function updates the object per
/// batch, and the trainer calls <see cref="Compute"/> once at the end of the epoch.
/// </summary>
/// <remarks>
/// The trainer adds <c>"loss"</c> (image-weighted mean of the batch losses) and <c>"num_images"</c> itself;
/// do not return those names. Tensors kept across batches (e.g. detections for mAP) must be detached and
/// moved out of the per-batch dispose scope (<c>.detach().MoveToOuter()</c>, or copied to plain arrays).
/// </remarks>
public interface IEpochMetrics
{
    /// <summary>Forgets everything accumulated so far.</summary>
    void Reset();

    /// <summary>The epoch's figures by name; names must be stable from epoch to epoch.</summary>
    IReadOnlyDictionary<string, double> Compute();
}

/// <summary>An <see cref="IEpochMetrics"/> that measures nothing: the epoch then reports loss and image count only.</summary>
public sealed class NoMetrics : IEpochMetrics
{
    /// <inheritdoc/>
    public void Reset() { }

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, double> Compute() => new Dictionary<string, double>();
}

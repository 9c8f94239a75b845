namespace DetSeg.Metrics;

/// <summary>
/// Something that accumulates over an epoch and then reports named numbers, following the course's
/// metric pattern (<c>reset</c>, <c>update</c>, <c>value</c>). The trainer logs every name and can select
/// the best checkpoint by any of them (e.g. <c>mean_iou</c>, <c>map50</c>).
/// </summary>
public interface IMetricSet
{
    /// <summary>Forgets everything accumulated so far.</summary>
    void Reset();

    /// <summary>The current values by name (host numbers; computing them may sync with the device).</summary>
    IReadOnlyDictionary<string, double> Values();
}

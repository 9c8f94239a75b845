using DetSeg.Metrics;

namespace DetSeg.Training;

/// <summary>An <see cref="IMetricSet"/> that measures nothing: an epoch then reports its loss and image count only.</summary>
public sealed class NoMetrics : IMetricSet
{
    /// <inheritdoc/>
    public void Reset() { }

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, double> Values() => new Dictionary<string, double>();
}

using DetSeg.Metrics;

namespace DetSeg.Training;

/// <summary>
/// The trainer's first metrics interface, kept for code written against it (e.g. detection's mAP): an
/// <see cref="IMetricSet"/> whose <see cref="IMetricSet.Values"/> is <see cref="Compute"/>. New code should
/// implement <see cref="IMetricSet"/> directly.
/// </summary>
public interface IEpochMetrics : IMetricSet
{
    /// <summary>The epoch's figures by name; names must be stable from epoch to epoch.</summary>
    IReadOnlyDictionary<string, double> Compute();

    IReadOnlyDictionary<string, double> IMetricSet.Values() => Compute();
}

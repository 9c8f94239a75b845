using DetSeg.Plots;

namespace DetSeg.Training;

/// <summary>The training curves of any task: one panel per metric, training vs validation per epoch.</summary>
public static class TrainingPlots
{
    /// <summary>
    /// One panel per name in <paramref name="metrics"/> (<c>"loss"</c> or any figure the metrics object reports),
    /// training vs validation per epoch, with a dashed line at the best epoch. A phase that never measured a figure
    /// (mAP while training: NaN every epoch) gets no curve in that panel.
    /// </summary>
    /// <param name="result">What <see cref="Trainer.Train"/> returned.</param>
    /// <param name="metrics">The figures to plot, e.g. <c>["loss", "map50", "map50_95"]</c>.</param>
    /// <param name="columns">Panels per row.</param>
    /// <param name="title">The title; null gives "Training curves (best: epoch E, monitor = v)".</param>
    /// <exception cref="ArgumentException">The history is empty, no metric is named, or a named metric was never measured.</exception>
    public static Figure Curves(TrainResult result, IReadOnlyList<string> metrics, int columns = 3, string? title = null)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(metrics);
        if (result.History.Count == 0) throw new ArgumentException("The training result has no epochs to plot.", nameof(result));
        if (metrics.Count == 0) throw new ArgumentException("Name at least one metric to plot, e.g. \"loss\".", nameof(metrics));
        var epochs = result.History.Select(h => (double)h.Epoch).ToArray();
        var panels = metrics.Select(m =>
        {
            var series = new List<Series>();
            foreach (var (phase, name) in new[] { (Phase.Training, "training"), (Phase.Validation, "validation") })
            {
                var values = result.Series(phase, m);
                if (values.Any(v => !double.IsNaN(v))) series.Add(new Series(name, values, epochs));
            }
            if (series.Count == 0)
                throw new ArgumentException($"No epoch measured '{m}'; known: {string.Join(", ", result.History[0].Train.Metrics.Keys.Concat(result.History[0].Validation?.Metrics.Keys ?? []).Distinct())}.", nameof(metrics));
            return new Panel(m, series);
        }).ToList();
        title ??= $"Training curves (best: epoch {result.BestEpoch}, {result.Options.Monitor} = {result.BestValue:0.0000})";
        return Charts.LineGrid(panels, Math.Min(columns, panels.Count), title: title, xTitle: "epoch",
            markerX: result.BestEpoch >= 0 ? result.BestEpoch : null, markerLabel: "best");
    }
}

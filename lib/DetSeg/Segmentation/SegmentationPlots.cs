using DetSeg.Metrics;
using DetSeg.Plots;
using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Segmentation;

/// <summary>Part 1's figures, built with <see cref="Charts"/>: metric curves, prediction overlays, confusion heatmap.</summary>
public static class SegmentationPlots
{
    /// <summary>The course's curve grid for <see cref="TrainingPlots.Curves"/>: loss and the mean metrics.</summary>
    public static readonly string[] CourseCurves = ["loss", "mean_accuracy", "mean_iou", "mean_f1_score", "mean_recall", "mean_precision"];

    /// <summary>Class names of Penn-Fudan's semantic masks, plus the padding shown as its own colour.</summary>
    public static readonly string[] PennFudanClasses = ["background", "pedestrian", "padding"];

    /// <summary>
    /// Image | ground truth | prediction for the items at <paramref name="indices"/> of a segmentation dataset
    /// (<c>[image [3 x H x W] normalized, mask [H x W]]</c>). The padding (-1) is drawn as its own colour in both masks
    /// (the course maps -1 to 2 for display); the prediction there is ignored by loss and metrics.
    /// </summary>
    /// <param name="model">The segmentation model (run in eval mode, without gradients).</param>
    /// <param name="dataset">The items.</param>
    /// <param name="indices">Which items; one row each.</param>
    /// <param name="denormalize">Maps the model input back to an image in [0, 1] (e.g. <c>PennFudan.Denormalize</c>); null shows it as is.</param>
    /// <param name="classNames">Class names, with one extra name for the padding colour; default <see cref="PennFudanClasses"/>.</param>
    /// <param name="panelWidth">Width of one panel in pixels.</param>
    public static Figure Overlays(nn.Module<Tensor, Tensor> model, DetSeg.Data.IDataset<Tensor[]> dataset, IReadOnlyList<int> indices,
        Func<Tensor, Tensor>? denormalize = null, IReadOnlyList<string>? classNames = null, int panelWidth = 260)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(dataset);
        if (indices is null || indices.Count == 0) throw new ArgumentException("Give at least one index to show.", nameof(indices));
        classNames ??= PennFudanClasses;
        long padding = classNames.Count - 1;
        var device = model.parameters().First().device;
        var figures = new List<Figure>();
        foreach (int i in indices)
        {
            using var scope = NewDisposeScope();
            var item = dataset[i];
            var (image, mask) = (item[0], item[1]);
            var pred = SegmentationTraining.Predict(model, image.to(device)).squeeze(0).cpu(); // [H x W]
            var shown = (denormalize is null ? image : denormalize(image)).clamp(0, 1).cpu();  // [3 x H x W]
            var pad = mask.cpu() < 0;
            var truth = mask.cpu().masked_fill(pad, padding);
            var predicted = pred.masked_fill(pad, padding);
            bool first = figures.Count == 0;
            figures.Add(Charts.Image(shown, title: $"image {i}", width: panelWidth));
            figures.Add(Charts.Mask(shown, truth, 0.5, first ? classNames : null, title: "ground truth", width: panelWidth));
            figures.Add(Charts.Mask(shown, predicted, 0.5, title: "prediction", width: panelWidth));
        }
        return Charts.Grid(figures, columns: 3, title: "Image | ground truth | prediction");
    }

    /// <summary>
    /// The confusion matrix of <paramref name="metrics"/> as a heatmap (rows: actual, columns: predicted); with
    /// <paramref name="normalize"/> each row is divided by its total, so the diagonal is each class's recall.
    /// </summary>
    public static Figure Confusion(ClassificationMetrics metrics, IReadOnlyList<string>? classNames = null, bool normalize = true, string title = "Confusion matrix")
    {
        ArgumentNullException.ThrowIfNull(metrics);
        classNames ??= PennFudanClasses.Take(metrics.NumClasses).ToArray();
        using var scope = NewDisposeScope();
        var counts = metrics.Confusion.Value.to(ScalarType.Float64); // [N x N]
        var z = normalize ? counts / counts.sum(1, keepdim: true).clamp(min: 1) : counts;
        return Charts.Heatmap(z, classNames, classNames, title: title + (normalize ? " (row-normalized)" : " (pixels)"),
            xTitle: "predicted", yTitle: "actual", textFormat: normalize ? "P1" : "0");
    }
}

using DetSeg.Metrics;
using static TorchSharp.torch;

namespace DetSeg.Attention;

/// <summary>
/// The trainer's per-epoch metrics for an image classifier: top-1 <c>accuracy</c> plus the course's
/// <see cref="ClassificationMetrics"/> figures (<c>mean_f1_score</c>, <c>mean_recall</c>, ...), from the
/// argmax of the logits.
/// </summary>
/// <remarks>
/// <c>accuracy</c> here is the share of correctly classified images (trace of the confusion matrix over the
/// total). It is not <see cref="ClassificationMetrics"/>' per-class one-vs-rest <c>mean_accuracy</c>, which
/// counts true negatives and is ~98 % even for a poor 10-class model.
/// </remarks>
public sealed class ClassifierMetrics : IMetricSet, IDisposable
{
    /// <summary>Creates empty metrics for <paramref name="numClasses"/> classes.</summary>
    public ClassifierMetrics(int numClasses) => Metrics = new ClassificationMetrics(numClasses);

    /// <summary>The accumulated confusion table (rows actual, columns predicted) and per-class metrics.</summary>
    public ClassificationMetrics Metrics { get; }

    /// <summary>Adds a batch: <c>[B x C]</c> logits and <c>[B]</c> int64 labels.</summary>
    /// <exception cref="ArgumentException">Logits that are not <c>[B x NumClasses]</c> or labels that are not <c>[B]</c>.</exception>
    public void Update(Tensor logits, Tensor labels)
    {
        if (logits.dim() != 2 || logits.shape[1] != Metrics.NumClasses || labels.dim() != 1 || labels.shape[0] != logits.shape[0])
            throw new ArgumentException(
                $"ClassifierMetrics expects logits [B x {Metrics.NumClasses}] and labels [B], got [{string.Join(" x ", logits.shape)}] and [{string.Join(" x ", labels.shape)}].");
        using var predicted = logits.detach().argmax(1);
        Metrics.Update(predicted, labels);
    }

    /// <summary>Top-1 accuracy so far (0 before any update).</summary>
    public double Accuracy
    {
        get
        {
            using var scope = NewDisposeScope();
            long n = Metrics.Total.item<long>();
            return n == 0 ? 0 : Metrics.TP.sum().item<long>() / (double)n;
        }
    }

    /// <inheritdoc/>
    public void Reset() => Metrics.Reset();

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, double> Values()
    {
        var values = new Dictionary<string, double> { ["accuracy"] = Accuracy };
        foreach (var m in new[] { Metric.Recall, Metric.Precision, Metric.F1Score })
            values["mean_" + ClassificationMetrics.NameOf(m)] = Metrics.Mean(m);
        return values;
    }

    /// <inheritdoc/>
    public void Dispose() => Metrics.Dispose();
}

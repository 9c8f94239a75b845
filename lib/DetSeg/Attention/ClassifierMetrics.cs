using DetSeg.Metrics;
using TorchSharp;
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
    readonly torch.Device device;

    /// <summary>Creates empty metrics for <paramref name="numClasses"/> classes, counted on <paramref name="device"/> (null: <see cref="Runtime.Device.Default"/>).</summary>
    public ClassifierMetrics(int numClasses, torch.Device? device = null)
    {
        Metrics = new ClassificationMetrics(numClasses);
        this.device = device ?? Runtime.Device.Default;
        Prime();
    }

    // Workaround (Metrics/ConfusionMatrix.cs, owner core): its first Update creates the count tensor with
    // MoveToOuterDisposeScope, which leaves it in the CALLER's dispose scope — the trainer's per-batch scope —
    // so it is freed after the first batch ("Tensor invalid -- empty handle" on the second). An empty update
    // here, outside any per-batch scope, creates the counts where no batch scope can free them; later updates
    // add in place. Harmless once ConfusionMatrix detaches its counts itself.
    void Prime()
    {
        using var none = empty(0, dtype: int64, device: device);
        Metrics.Update(none, none);
    }

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
    public void Reset()
    {
        Metrics.Reset();
        Prime();
    }

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

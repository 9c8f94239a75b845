using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Metrics;

/// <summary>
/// Accumulates an N x N confusion matrix (rows: actual class, columns: predicted class) on the
/// device of its inputs, with one <c>bincount</c> per update.
/// </summary>
/// <remarks>
/// Unlike the course's version this one ignores targets outside <c>[0, N)</c> (the <c>-1</c> padding), so
/// it can serve segmentation masks directly. A prediction outside <c>[0, N)</c> with a valid target
/// counts as a miss of that target (a false negative) and as a prediction of no class.
/// </remarks>
public sealed class ConfusionMatrix : IDisposable
{
    // [N x (N+1)]: the extra column collects predictions outside [0, N).
    Tensor? counts;

    /// <summary>Creates an empty matrix for <paramref name="numClasses"/> classes.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="numClasses"/> &lt; 1.</exception>
    public ConfusionMatrix(int numClasses)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(numClasses, 1);
        NumClasses = numClasses;
    }

    /// <summary>The number of classes N.</summary>
    public int NumClasses { get; }

    /// <summary>Adds a batch. <paramref name="pred"/> and <paramref name="target"/> hold integer class indices of the same shape.</summary>
    /// <exception cref="ArgumentException">Shapes differ, or either tensor is not an integer tensor.</exception>
    public void Update(Tensor pred, Tensor target)
    {
        CheckInputs(pred, target);
        using var scope = NewDisposeScope();
        long n = NumClasses;
        var t = target.flatten().to(int64);
        var p = pred.flatten().to(int64, t.device);
        var valid = t.ge(0).logical_and(t.lt(n));
        var p2 = where(p.ge(0).logical_and(p.lt(n)), p, n);          // out-of-range prediction -> column N
        var index = where(valid, t * (n + 1) + p2, n * (n + 1));     // ignored target -> overflow bin
        var bins = bincount(index, minlength: n * (n + 1) + 1).narrow(0, 0, n * (n + 1)).view(n, n + 1);
        if (counts is null || counts.device_type != bins.device_type || counts.device_index != bins.device_index) { counts?.Dispose(); counts = bins.MoveToOuterDisposeScope(); }
        else counts.add_(bins);
    }

    /// <summary>Forgets all counts.</summary>
    public void Reset() { counts?.Dispose(); counts = null; }

    Tensor Counts => counts ?? zeros(NumClasses, NumClasses + 1, dtype: int64);

    /// <summary>The N x N matrix (int64; rows actual, columns predicted).</summary>
    public Tensor Value => Counts.narrow(1, 0, NumClasses);

    /// <summary>Per-class true positives.</summary>
    public Tensor TP => Value.diag();

    /// <summary>Per-class false negatives: samples of the class predicted as anything else.</summary>
    public Tensor FN => Counts.sum(dim: 1) - TP;

    /// <summary>Per-class false positives: samples of other classes predicted as this class.</summary>
    public Tensor FP => Value.sum(dim: 0) - TP;

    /// <summary>Per-class true negatives: <c>Total - (TP + FN + FP)</c>.</summary>
    public Tensor TN => Total - (TP + FN + FP);

    /// <summary>Per-class number of samples (actual positives, <c>TP + FN</c>).</summary>
    public Tensor Count => Counts.sum(dim: 1);

    /// <summary>Per-class frequency <c>Count / max(Total, 1)</c>.</summary>
    public Tensor Frequency => Count.to(float64) / Total.clamp(min: 1).to(float64);

    /// <summary>The number of counted (non-ignored) samples, as a 0-d tensor.</summary>
    public Tensor Total => Counts.sum();

    internal static void CheckInputs(Tensor pred, Tensor target)
    {
        if (!pred.shape.SequenceEqual(target.shape))
            throw new ArgumentException(
                $"pred shape [{string.Join(", ", pred.shape)}] differs from target shape [{string.Join(", ", target.shape)}].", nameof(pred));
        if (pred.is_floating_point() || pred.is_complex())
            throw new ArgumentException($"pred must hold class indices (an integer tensor), not {pred.dtype}; take argmax over the class dimension first.", nameof(pred));
        if (target.is_floating_point() || target.is_complex())
            throw new ArgumentException($"target must hold class indices (an integer tensor), not {target.dtype}.", nameof(target));
    }

    /// <inheritdoc/>
    public void Dispose() => Reset();
}

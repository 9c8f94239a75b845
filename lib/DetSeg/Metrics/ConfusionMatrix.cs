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
    // [(N+2) x (N+2)] bins; row/column 0 and N+1 collect targets/predictions outside [0, N).
    Tensor? bins;
    // Update runs every batch: its numbers are Scalars held for the matrix's life (a temporary one can be freed
    // mid-call by a GC on another thread, see Runtime/Scalars). Freed by their finalizers with the matrix.
    readonly Scalar maxClass, side, sidePlusOne;

    /// <summary>Creates an empty matrix for <paramref name="numClasses"/> classes.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="numClasses"/> &lt; 1.</exception>
    public ConfusionMatrix(int numClasses)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(numClasses, 1);
        NumClasses = numClasses;
        maxClass = ((long)numClasses).ToScalar();
        side = (numClasses + 2L).ToScalar();
        sidePlusOne = (numClasses + 3L).ToScalar();
    }

    /// <summary>The number of classes N.</summary>
    public int NumClasses { get; }

    /// <summary>Adds a batch. <paramref name="pred"/> and <paramref name="target"/> hold integer class indices of the same shape.</summary>
    /// <exception cref="ArgumentException">Shapes differ, or either tensor is not an integer tensor.</exception>
    public void Update(Tensor pred, Tensor target)
    {
        CheckInputs(pred, target);
        using var scope = NewDisposeScope();
        long n = NumClasses, sides = n + 2;
        // Clamping to [-1, N] folds every out-of-range value into the two border bins, so one
        // bincount does the ignore-index work without a boolean mask or a host sync:
        // index = (t + 1) * (N + 2) + (p + 1) = t * (N + 2) + p + (N + 3).
        var index = target.flatten().to(int64).clamp(Runtime.Scalars.MinusOneL, maxClass).mul_(side);
        index.add_(pred.flatten().to(int64, index.device).clamp(Runtime.Scalars.MinusOneL, maxClass), Runtime.Scalars.OneL)
             .add_(sidePlusOne, Runtime.Scalars.OneL);
        var batch = bincount(index, minlength: sides * sides).view(sides, sides);
        if (bins is null || bins.device_type != batch.device_type || bins.device_index != batch.device_index)
        {
            bins?.Dispose();
            // Detached, not moved to the outer scope: callers update from inside their own per-batch
            // scope, which would otherwise free the running counts after the first batch.
            bins = batch.DetachFromDisposeScope();
        }
        else bins.add_(batch, Runtime.Scalars.OneL);
    }

    /// <summary>Forgets all counts.</summary>
    public void Reset() { bins?.Dispose(); bins = null; }

    // [N x (N+2)]: the rows of valid targets; columns 0 and N+1 are predictions of no class.
    Tensor Counts => bins is null ? zeros(NumClasses, NumClasses + 2, dtype: int64) : bins.narrow(0, 1, NumClasses);

    /// <summary>The N x N matrix (int64; rows actual, columns predicted).</summary>
    public Tensor Value => Counts.narrow(1, 1, NumClasses);

    /// <summary>Per-class true positives.</summary>
    public Tensor TP => Value.diag();

    /// <summary>Per-class false negatives: samples of the class predicted as anything else.</summary>
    public Tensor FN => Counts.sum(dim: 1) - TP;

    /// <summary>Per-class false positives: samples of other classes predicted as this class.</summary>
    public Tensor FP => Value.sum(dim: 0) - TP;

    /// <summary>Per-class true negatives: <c>Total - (TP + FN + FP)</c>.</summary>
    public Tensor TN => Total - TP.add(FN, Runtime.Scalars.OneL).add(FP, Runtime.Scalars.OneL);

    /// <summary>Per-class number of samples (actual positives, <c>TP + FN</c>).</summary>
    public Tensor Count => Counts.sum(dim: 1);

    /// <summary>Per-class frequency <c>Count / max(Total, 1)</c>.</summary>
    public Tensor Frequency => Count.to(float64) / Total.clamp_min(Runtime.Scalars.OneL).to(float64);

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

using static TorchSharp.torch;

namespace DetSeg.Metrics;

/// <summary>
/// The course's worked example of class-weighted cross-entropy, written out by hand: what
/// <c>cross_entropy(x, y, weight: w)</c> computes.
/// </summary>
public static class WeightedCrossEntropy
{
    /// <summary>
    /// Per-sample cross-entropy weighted by <c>w[y] / Σ w[y]</c> and summed: equal to
    /// <c>nn.functional.cross_entropy(logits, target, weight)</c> with the default mean reduction.
    /// </summary>
    /// <param name="logits">[B x C] scores.</param>
    /// <param name="target">[B] class indices.</param>
    /// <param name="weight">[C] class weights.</param>
    /// <exception cref="ArgumentException">Shapes that do not fit together.</exception>
    public static Tensor ByHand(Tensor logits, Tensor target, Tensor weight)
    {
        if (logits.dim() != 2 || target.dim() != 1 || logits.shape[0] != target.shape[0] || weight.dim() != 1 || weight.shape[0] != logits.shape[1])
            throw new ArgumentException(
                $"Expected logits [B x C], target [B], weight [C]; got [{string.Join(", ", logits.shape)}], [{string.Join(", ", target.shape)}], [{string.Join(", ", weight.shape)}].");
        using var scope = NewDisposeScope();
        var loss = nn.functional.cross_entropy(logits, target, reduction: nn.Reduction.None); // [B]
        var w = weight[target];                                                              // [B]
        return (loss * (w / w.sum())).sum().MoveToOuterDisposeScope();
    }
}

using static TorchSharp.torch;

namespace DetSeg.Segmentation;

/// <summary>The course's segmentation loss: pixel-wise class-weighted softmax cross-entropy that ignores -1 (padding) pixels.</summary>
public static class SegmentationLoss
{
    /// <summary>The index of pixels that count for nothing (the padding added to square the images).</summary>
    public const long IgnoreIndex = -1;

    /// <summary>The course's weights for Penn-Fudan: pedestrian pixels count twice as much as background.</summary>
    public static readonly double[] CourseWeights = [1.0, 2.0];

    /// <summary>
    /// Weighted mean cross-entropy over all pixels whose mask is not -1 (PyTorch's weighted mean: Σ w_y·ℓ / Σ w_y).
    /// </summary>
    /// <param name="logits">[B x C x H x W] scores.</param>
    /// <param name="masks">[B x H x W] int64 class indices, -1 to ignore.</param>
    /// <param name="classWeights">One weight per class; null = <see cref="CourseWeights"/> when C is 2, else equal weights.</param>
    /// <exception cref="ArgumentException">Shapes disagree or there is the wrong number of weights.</exception>
    public static Tensor Compute(Tensor logits, Tensor masks, IReadOnlyList<double>? classWeights = null)
    {
        if (logits.dim() != 4 || masks.dim() != 3 || logits.shape[0] != masks.shape[0] || logits.shape[2] != masks.shape[1] || logits.shape[3] != masks.shape[2])
            throw new ArgumentException($"SegmentationLoss: logits [{string.Join(", ", logits.shape)}] must be [B x C x H x W] and masks [{string.Join(", ", masks.shape)}] [B x H x W].");
        long c = logits.shape[1];
        classWeights ??= c == 2 ? CourseWeights : Enumerable.Repeat(1.0, (int)c).ToArray();
        if (classWeights.Count != c)
            throw new ArgumentException($"SegmentationLoss: {classWeights.Count} class weights for {c} classes.", nameof(classWeights));
        using var weight = tensor(classWeights.Select(v => (float)v).ToArray(), device: logits.device).to(logits.dtype);
        var flat = logits.permute(0, 2, 3, 1).flatten(0, -2); // [B·H·W x C]
        return nn.functional.cross_entropy(flat, masks.flatten().to(ScalarType.Int64), weight: weight, ignore_index: IgnoreIndex);
    }
}

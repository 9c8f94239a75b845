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
        CheckShapes(logits, masks);
        using var weight = Weights(logits.shape[1], classWeights, logits.device, logits.dtype);
        return ComputeWithWeight(logits, masks, weight);
    }

    /// <summary>
    /// The same loss with the class weights already on the logits' device: what a training step calls, so that the
    /// weights are uploaded once per run rather than once per batch.
    /// </summary>
    /// <param name="logits">[B x C x H x W] scores.</param>
    /// <param name="masks">[B x H x W] int64 class indices, -1 to ignore.</param>
    /// <param name="weight">[C] class weights (<see cref="Weights"/>).</param>
    /// <exception cref="ArgumentException">Shapes disagree or there is the wrong number of weights.</exception>
    public static Tensor ComputeWithWeight(Tensor logits, Tensor masks, Tensor weight)
    {
        CheckShapes(logits, masks);
        if (weight.dim() != 1 || weight.shape[0] != logits.shape[1])
            throw new ArgumentException($"SegmentationLoss: weight [{string.Join(", ", weight.shape)}] must be [C] for {logits.shape[1]} classes.", nameof(weight));
        // cross_entropy takes [B x C x H x W] with [B x H x W] targets as they are: no permute, no flatten copy.
        return nn.functional.cross_entropy(logits, masks.to(ScalarType.Int64), weight: weight, ignore_index: IgnoreIndex);
    }

    /// <summary>
    /// The class weights as a [C] tensor on <paramref name="device"/>: <paramref name="classWeights"/>, or
    /// <see cref="CourseWeights"/> when C is 2 and equal weights otherwise.
    /// </summary>
    /// <exception cref="ArgumentException">There is the wrong number of weights.</exception>
    public static Tensor Weights(long numClasses, IReadOnlyList<double>? classWeights, Device device, ScalarType dtype = ScalarType.Float32)
    {
        classWeights ??= numClasses == 2 ? CourseWeights : Enumerable.Repeat(1.0, (int)numClasses).ToArray();
        if (classWeights.Count != numClasses)
            throw new ArgumentException($"SegmentationLoss: {classWeights.Count} class weights for {numClasses} classes.", nameof(classWeights));
        return tensor(classWeights.Select(v => (float)v).ToArray(), device: device).to(dtype);
    }

    static void CheckShapes(Tensor logits, Tensor masks)
    {
        if (logits.dim() != 4 || masks.dim() != 3 || logits.shape[0] != masks.shape[0] || logits.shape[2] != masks.shape[1] || logits.shape[3] != masks.shape[2])
            throw new ArgumentException($"SegmentationLoss: logits [{string.Join(", ", logits.shape)}] must be [B x C x H x W] and masks [{string.Join(", ", masks.shape)}] [B x H x W].");
    }
}

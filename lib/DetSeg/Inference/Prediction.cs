using static TorchSharp.torch;

namespace DetSeg.Inference;

/// <summary>
/// One image's prediction in its original pixels. Detection: <see cref="Boxes"/> [N x 4] xyxy, <see cref="Scores"/> [N],
/// <see cref="Labels"/> [N], sorted by score. Segmentation: <see cref="Mask"/> [H x W] int64 class per pixel.
/// </summary>
public sealed record Prediction(string File, int Width, int Height, Tensor? Boxes, Tensor? Scores, Tensor? Labels, Tensor? Mask) : IDisposable
{
    /// <inheritdoc/>
    public void Dispose() { Boxes?.Dispose(); Scores?.Dispose(); Labels?.Dispose(); Mask?.Dispose(); }
}

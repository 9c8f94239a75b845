using static TorchSharp.torch;

namespace DetSeg.Attention;

/// <summary>Turning a ViT's attention weights into pictures: where the CLS token looks.</summary>
public static class AttentionMaps
{
    /// <summary>
    /// The CLS token's attention over the patches, as a grid: <c>[B x L x L]</c> weights (one layer,
    /// averaged over heads, token 0 = CLS) to <c>[B x G x G]</c>, G = patches per side. Each map is the
    /// CLS row without its self-attention entry, so it sums to 1 − (CLS attending to itself).
    /// </summary>
    /// <exception cref="ArgumentException">Weights that are not <c>[B x L x L]</c> with L = 1 + G².</exception>
    public static Tensor ClsToPatches(Tensor weights, long gridSize)
    {
        long L = 1 + gridSize * gridSize;
        if (weights.dim() != 3 || weights.shape[1] != L || weights.shape[2] != L)
            throw new ArgumentException($"ClsToPatches expects [B x {L} x {L}] weights for a {gridSize} x {gridSize} grid plus CLS, got [{string.Join(" x ", weights.shape)}].", nameof(weights));
        using var scope = NewDisposeScope();
        return weights[.., 0, 1..]                                  // [B x G²]: CLS query row, patch keys
            .reshape(weights.shape[0], gridSize, gridSize)          // [B x G x G]
            .MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The last layer's CLS-to-patch map for <paramref name="images"/> (one forward pass, no gradients),
    /// upsampled to the image size so it can be laid over the digits: <c>[B x H x W]</c>, plus the logits.
    /// </summary>
    public static (Tensor Maps, Tensor Logits) LastLayerCls(VisionTransformer model, Tensor images)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var (logits, attention) = model.forward_with_attention(images);
        var grid = ClsToPatches(attention[^1], model.Config.GridSize); // [B x G x G]
        long p = model.Config.PatchSize;
        var maps = grid.repeat_interleave(p, dim: 1).repeat_interleave(p, dim: 2); // [B x H x W], one block per patch
        return (maps.MoveToOuterDisposeScope(), logits.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Lays attention maps over images for display: <c>[B x C x H x W]</c> images (C = 1 or 3, values in [0, 1])
    /// and <c>[B x H x W]</c> maps to <c>[B x 3 x H x W]</c> RGB in [0, 1]. Each map is scaled to its own
    /// maximum and coloured black → red → yellow → white ("hot"), then mixed with the image by <paramref name="alpha"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Shapes that do not match or <paramref name="alpha"/> outside [0, 1].</exception>
    public static Tensor Overlay(Tensor images, Tensor maps, double alpha = 0.6)
    {
        if (images.dim() != 4 || (images.shape[1] != 1 && images.shape[1] != 3) || maps.dim() != 3
            || maps.shape[0] != images.shape[0] || maps.shape[1] != images.shape[2] || maps.shape[2] != images.shape[3])
            throw new ArgumentException(
                $"Overlay expects images [B x 1|3 x H x W] and maps [B x H x W], got [{string.Join(" x ", images.shape)}] and [{string.Join(" x ", maps.shape)}].");
        if (alpha < 0 || alpha > 1) throw new ArgumentException($"alpha must be in [0, 1], got {alpha}.", nameof(alpha));
        using var scope = NewDisposeScope();
        var m = maps.detach().to(float32);
        m = m / m.flatten(1).amax(new long[] { 1 }).clamp_min(1e-12).view(-1, 1, 1);       // [B x H x W] in [0, 1]
        var hot = stack(new[] { (3 * m).clamp(0, 1), (3 * m - 1).clamp(0, 1), (3 * m - 2).clamp(0, 1) }, 1); // [B x 3 x H x W]
        var rgb = images.detach().to(float32).expand(-1, 3, -1, -1);                       // [B x 3 x H x W]
        return ((1 - alpha) * rgb + alpha * hot).clamp(0, 1).MoveToOuterDisposeScope();
    }
}

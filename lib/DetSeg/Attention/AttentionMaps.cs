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
}

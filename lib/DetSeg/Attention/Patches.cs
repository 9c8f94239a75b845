using static TorchSharp.torch;

namespace DetSeg.Attention;

/// <summary>Cutting images into the non-overlapping patches a Vision Transformer reads as tokens.</summary>
public static class Patches
{
    /// <summary>
    /// The course's <c>img_to_patch</c> (its first assignment): <c>[B x C x H x W]</c> images to
    /// <c>[B x N x (C·p²)]</c> patch vectors, N = (H/p)·(W/p), patches in row-major order (left to right,
    /// then top to bottom); each vector is channel-major, then patch row, then patch column.
    /// </summary>
    /// <param name="x">Images <c>[B x C x H x W]</c>.</param>
    /// <param name="patchSize">Side p of the square patches; must divide H and W.</param>
    /// <param name="flattenChannels">false keeps each patch as <c>[C x p x p]</c>: the result is <c>[B x N x C x p x p]</c> (for showing patches).</param>
    /// <exception cref="ArgumentException">Not 4-D, or p does not divide H and W.</exception>
    public static Tensor ImgToPatch(Tensor x, long patchSize, bool flattenChannels = true)
    {
        if (x.dim() != 4)
            throw new ArgumentException($"ImgToPatch expects images [B x C x H x W], got [{string.Join(" x ", x.shape)}].", nameof(x));
        long B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3], p = patchSize;
        if (p <= 0 || H % p != 0 || W % p != 0)
            throw new ArgumentException($"patchSize {p} must be positive and divide the image size {H} x {W}.", nameof(patchSize));

        using var scope = NewDisposeScope();
        var patches = x.reshape(B, C, H / p, p, W / p, p)   // [B x C x H' x p x W' x p]
                       .permute(0, 2, 4, 1, 3, 5)           // [B x H' x W' x C x p x p]
                       .flatten(1, 2);                      // [B x N x C x p x p]
        if (flattenChannels)
            patches = patches.flatten(2, 4);                // [B x N x (C·p·p)]
        return patches.MoveToOuterDisposeScope();
    }
}

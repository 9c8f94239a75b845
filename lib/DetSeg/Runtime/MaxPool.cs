using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Runtime;

/// <summary>
/// A U-Net's <c>MaxPool2d(2)</c> at inference, computed as two pairwise <c>maximum</c>s: rows 2i and 2i+1, then
/// columns 2j and 2j+1 of that — the same maxima (NaN propagates as in max_pool2d), 5–11x faster on the CPU.
/// </summary>
/// <remarks>
/// libtorch 2.10's CPU max_pool2d on NCHW tensors (which also writes an int64 index per output) took 65 ms in float32
/// and 60 in bfloat16 on a [4 x 64 x 256 x 256] map, where the two maximum passes take 13 and 6.7
/// (`bench/results/levers-maxpool-nms-2026-12-06.json`); a whole U-Net inference at 4x3x256 takes 60–90 ms less.
/// Only where no gradient is recorded: max_pool2d's backward gives a tied window's gradient to its first maximum,
/// maximum's splits it.
/// </remarks>
public static class MaxPool
{
    // Set, the module itself runs (tests compare the two paths through whole models).
    [ThreadStatic] internal static bool UseModule;

    /// <summary>True when <paramref name="pool"/> is a plain 2x2, stride-2 max pool (no padding, dilation or ceil mode).</summary>
    public static bool IsTwoByTwo(MaxPool2d pool) =>
        pool.kernel_size is [2, 2] && pool.stride is [2, 2] && pool.padding is null or [0, 0]
        && pool.dilation is null or [1, 1] && !pool.ceil_mode;

    /// <summary>
    /// <paramref name="pool"/>'s output for <paramref name="x"/> [B x C x H x W] → [B x C x ⌊H/2⌋ x ⌊W/2⌋]: by pairwise
    /// maxima when <see cref="IsTwoByTwo"/> and no gradient is recorded, else the module's own forward.
    /// </summary>
    public static Tensor Forward(MaxPool2d pool, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(x);
        if (UseModule || !IsTwoByTwo(pool) || x.dim() != 4 || x.shape[2] < 2 || x.shape[3] < 2 || (x.requires_grad && is_grad_enabled()))
            return pool.call(x);
        long h = x.shape[2] / 2 * 2, w = x.shape[3] / 2 * 2;                       // an odd last row or column is dropped, as max_pool2d does
        var rows = maximum(x.slice(2, 0, h, 2).slice(3, 0, w, 1), x.slice(2, 1, h, 2).slice(3, 0, w, 1)); // [B x C x H/2 x W]
        return maximum(rows.slice(3, 0, w, 2), rows.slice(3, 1, w, 2));            // [B x C x H/2 x W/2]
    }
}

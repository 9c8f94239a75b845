using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Runtime;

/// <summary>
/// A U-Net's upsampling <c>ConvTranspose2d(kernel 2, stride 2)</c> computed as a 1x1 convolution to 4× the channels
/// followed by <c>pixel_shuffle(2)</c>: the same sums (each output pixel receives exactly one kernel tap, the windows
/// never overlap), on the fast 1x1 kernels.
/// </summary>
/// <remarks>
/// libtorch 2.10 sends transposed convolutions to oneDNN's deconvolution (<c>brg_deconv</c>, with layout
/// conversions around it), which the per-op profile (<c>bench/compare --ops</c>) found the slowest U-Net op against
/// PyTorch 1.13's native path. y[n, o, 2i+a, 2j+b] = b[o] + Σ_c x[n, c, i, j]·W[c, o, a, b] is a 1x1 convolution
/// with the weight viewed as [(o, a, b) x c] and the output channels (o, a, b) moved into pixels by pixel_shuffle.
/// The module's own parameters are used (gradients reach them; state_dict keys are unchanged).
/// </remarks>
public static class TransposedConv
{
    // While ConvFlops counts, the module itself runs (same sums), so that its forward hooks see the call.
    [ThreadStatic] internal static bool UseModule;

    /// <summary>True when <paramref name="conv"/> is a plain kernel-2, stride-2 transposed convolution (no padding, dilation or groups).</summary>
    public static bool IsKernelTwoStrideTwo(ConvTranspose2d conv) =>
        conv.kernel_size is [2, 2] && conv.stride is [2, 2] && conv.padding is [0, 0] && conv.dilation is [1, 1]
        && conv.output_padding is [0, 0] && conv.groups == 1 && conv.padding_mode == PaddingModes.Zeros && conv.padding_type is null;

    /// <summary>
    /// <paramref name="conv"/>'s output for <paramref name="x"/> [B x in x h x w] → [B x out x 2h x 2w]: through the
    /// 1x1 + pixel-shuffle form when <see cref="IsKernelTwoStrideTwo"/>, else the module's own forward.
    /// </summary>
    public static Tensor Forward(ConvTranspose2d conv, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(conv);
        ArgumentNullException.ThrowIfNull(x);
        if (UseModule || !IsKernelTwoStrideTwo(conv) || x.dim() != 4 || x.shape[1] != conv.in_channels) return conv.call(x);
        var w = conv.weight!;                                              // [in x out x 2 x 2]
        long cin = w.shape[0], cout = w.shape[1];
        var w1 = w.permute(1, 2, 3, 0).reshape(cout * 4, cin, 1, 1);       // [(out·2·2) x in x 1 x 1]
        var b1 = conv.bias?.unsqueeze(1).expand(cout, 4).reshape(cout * 4); // [(out·2·2)]
        var y = ConvGuard.Conv2d(x, w1, b1);                               // [B x 4·out x h x w]
        return nn.functional.pixel_shuffle(y, 2);                          // [B x out x 2h x 2w]
    }
}

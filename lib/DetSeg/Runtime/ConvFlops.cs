using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Runtime;

/// <summary>
/// Floating-point operations of a model's 2-D convolutions for one input, counted from the layers that actually run
/// (a multiply-add is 2 FLOPs, darknet's and the roofline's convention: YOLOv3-416 is ~65.9 GFLOP).
/// </summary>
public static class ConvFlops
{
    /// <summary>
    /// Runs <paramref name="model"/> once on <paramref name="input"/> without gradients and sums, over every
    /// <see cref="Convolution"/> call, <c>2 · Cin/groups · Cout · K_h · K_w · H_out · W_out · B</c> (for a transposed
    /// convolution the same product over the input's pixels, each of which scatters Cout/groups · K_h · K_w
    /// multiply-adds per input channel). Bias adds, activations and normalisations are not counted.
    /// </summary>
    /// <returns>The FLOP count and the number of convolution calls counted.</returns>
    public static (double Flops, int Convolutions) Count(nn.Module<Tensor, Tensor> model, Tensor input)
        => Count(input, () => { using var _ = model.call(input); }, model);

    /// <summary>As <see cref="Count(nn.Module{Tensor, Tensor}, Tensor)"/> for any model: <paramref name="run"/>
    /// performs one forward pass of <paramref name="model"/> on a batch of <paramref name="input"/>'s size.</summary>
    public static (double Flops, int Convolutions) Count(Tensor input, Action run, nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(model);
        long batch = input.shape[0];
        double flops = 0;
        int calls = 0;
        var removers = new List<Action>();
        foreach (var m in model.modules().Prepend(model).Distinct())
        {
            if (m is not Convolution conv || conv.kernel_size.Length != 2) continue;
            // The output's spatial size, not its batch: ConvGuard's hooks may hand the module an empty batch.
            var hook = conv.register_forward_hook((_, _, y) =>
            {
                flops += PerImage(conv, y.shape[^2], y.shape[^1]) * batch;
                calls++;
                return y;
            });
            removers.Add(() => hook.remove());
        }
        bool useModule = TransposedConv.UseModule;
        TransposedConv.UseModule = true;          // the counting hooks sit on the modules; the FLOPs are the same either way
        try
        {
            using var scope = NewDisposeScope();
            using var grad = no_grad();
            run();
        }
        finally
        {
            TransposedConv.UseModule = useModule;
            foreach (var remove in removers) remove();
        }
        return (flops, calls);
    }

    /// <summary>FLOPs of one image through <paramref name="conv"/> given its output size.</summary>
    public static double PerImage(Convolution conv, long outHeight, long outWidth)
    {
        ArgumentNullException.ThrowIfNull(conv);
        long kh = conv.kernel_size[0], kw = conv.kernel_size[1];
        double macsPerPixel = (double)conv.in_channels / conv.groups * conv.out_channels * kh * kw;
        if (!conv.transposed) return 2 * macsPerPixel * outHeight * outWidth;
        // transposed: H_out = (H_in - 1)·s - 2p + d·(k - 1) + output_padding + 1, solved for H_in
        long hin = (outHeight - 1 + 2 * conv.padding![0] - conv.dilation[0] * (kh - 1) - conv.output_padding[0]) / conv.stride[0] + 1;
        long win = (outWidth - 1 + 2 * conv.padding![1] - conv.dilation[1] * (kw - 1) - conv.output_padding[1]) / conv.stride[1] + 1;
        return 2 * macsPerPixel * hin * win;
    }
}

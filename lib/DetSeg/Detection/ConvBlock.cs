using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Detection;

/// <summary>Darknet-53's basic unit: Conv2d (no bias, BatchNorm has one) → BatchNorm2d → LeakyReLU(0.1).</summary>
/// <remarks>The course's <c>conv_block</c>. Darknet's weight files store, per block, the BN bias, weight,
/// running mean and running variance, then the conv weight (see <see cref="DarknetWeights"/>).</remarks>
public sealed class ConvBlock : nn.Module<Tensor, Tensor>
{
    /// <summary>The bias-free convolution.</summary>
    public readonly Conv2d conv;
    /// <summary>The batch normalization after <see cref="conv"/>.</summary>
    public readonly Runtime.BatchNorm2d bn;
    private readonly Runtime.LeakyReLU act;

    /// <summary>Creates a block; defaults are the course's 3x3, stride 1, padding 1.</summary>
    public ConvBlock(long inChannels, long outChannels, long kernelSize = 3, long stride = 1, long padding = 1)
        : base(nameof(ConvBlock))
    {
        conv = nn.Conv2d(inChannels, outChannels, kernelSize, stride: stride, padding: padding, bias: false);
        bn = new Runtime.BatchNorm2d(outChannels); // no temporary Scalar per call: see Runtime.BatchNorm2d
        act = new Runtime.LeakyReLU(0.1, inplace: true); // slope held: see Runtime.LeakyReLU
        RegisterComponents();
        DetSeg.Runtime.ConvGuard.Protect(this); // narrow convs: oneDNN computes them wrong on some CPUs
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x) => act.call(bn.call(conv.call(x)));
}

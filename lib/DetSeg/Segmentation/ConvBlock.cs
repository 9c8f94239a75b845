using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Segmentation;

/// <summary>The U-Net's unit: two times [3x3 conv (padding 1), BatchNorm, LeakyReLU(0.01)]; keeps H and W.</summary>
public sealed class ConvBlock : nn.Module<Tensor, Tensor>
{
    private readonly Sequential conv_block;

    /// <summary>Maps <paramref name="numInput"/> channels to <paramref name="numOutput"/>.</summary>
    public ConvBlock(long numInput, long numOutput) : base(nameof(ConvBlock))
    {
        conv_block = nn.Sequential(
            nn.Conv2d(numInput, numOutput, 3, padding: 1),
            new Runtime.BatchNorm2d(numOutput),
            new Runtime.LeakyReLU(0.01, inplace: true),
            nn.Conv2d(numOutput, numOutput, 3, padding: 1),
            new Runtime.BatchNorm2d(numOutput),
            new Runtime.LeakyReLU(0.01, inplace: true));
        RegisterComponents();
        DetSeg.Runtime.ConvGuard.Protect(this); // narrow convs: oneDNN computes them wrong on some CPUs
    }

    /// <summary>[B x numInput x H x W] to [B x numOutput x H x W].</summary>
    public override Tensor forward(Tensor x) => conv_block.call(x);
}

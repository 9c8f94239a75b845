using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace DetSeg.Detection;

/// <summary>
/// YOLOv3's upsampling route: 1x1 conv block to half the channels (rounded up), bilinear upsampling
/// (align_corners) to the skip connection's size, then concatenation [upsampled, skip] on channels.
/// </summary>
/// <remarks>The official darknet model upsamples with nearest x2; the course uses bilinear, kept here.</remarks>
public sealed class ConcatUnit : nn.Module<Tensor, Tensor, Tensor>
{
    /// <summary>The 1x1 reduction.</summary>
    public readonly ConvBlock net;

    /// <summary>Output channels of the 1x1 conv (ceil(in/2)).</summary>
    public long OutChannels { get; }

    /// <summary>Creates the unit for <paramref name="inChannels"/> input channels.</summary>
    public ConcatUnit(long inChannels) : base(nameof(ConcatUnit))
    {
        // course dump had `-(in_channels // 2)`: it means ceil(in/2) (-(-x // 2) in Python)
        OutChannels = (inChannels + 1) / 2;
        net = new ConvBlock(inChannels, OutChannels, kernelSize: 1, padding: 0);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x, Tensor xSkip)
    {
        var y = net.call(x);
        y = F.interpolate(y, size: new[] { xSkip.shape[2], xSkip.shape[3] }, mode: InterpolationMode.Bilinear, align_corners: true);
        return cat(new[] { y, xSkip }, dim: 1); // [B x (C/2 + C_skip) x H x W]
    }
}

using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace DetSeg.Detection;

/// <summary>
/// YOLOv3's upsampling route: 1x1 conv block to half the channels (rounded up), upsampling to the skip
/// connection's size, then concatenation [upsampled, skip] on channels.
/// </summary>
/// <remarks>
/// <see cref="Mode"/> is the course's bilinear (align_corners) by default. darknet's <c>[upsample]</c> layer is
/// nearest-neighbour ×2, which the official <c>yolov3.weights</c> were trained with, so
/// <see cref="DarknetWeights.Load"/> switches to <see cref="InterpolationMode.Nearest"/>.
/// </remarks>
public sealed class ConcatUnit : nn.Module<Tensor, Tensor, Tensor>
{
    /// <summary>The 1x1 reduction.</summary>
    public readonly ConvBlock net;

    /// <summary>Output channels of the 1x1 conv (ceil(in/2)).</summary>
    public long OutChannels { get; }

    InterpolationMode mode;

    /// <summary>
    /// The upsampling: <see cref="InterpolationMode.Bilinear"/> with align_corners (the course's) or
    /// <see cref="InterpolationMode.Nearest"/> (darknet's <c>[upsample]</c>, for the official weights).
    /// </summary>
    /// <exception cref="ArgumentException">Any other mode.</exception>
    public InterpolationMode Mode
    {
        get => mode;
        set => mode = value is InterpolationMode.Bilinear or InterpolationMode.Nearest ? value
            : throw new ArgumentException($"ConcatUnit upsamples with Bilinear (the course) or Nearest (darknet), not {value}.", nameof(value));
    }

    /// <summary>Creates the unit for <paramref name="inChannels"/> input channels, upsampling with <paramref name="mode"/>.</summary>
    public ConcatUnit(long inChannels, InterpolationMode mode = InterpolationMode.Bilinear) : base(nameof(ConcatUnit))
    {
        Mode = mode;
        // course dump had `-(in_channels // 2)`: it means ceil(in/2) (-(-x // 2) in Python)
        OutChannels = (inChannels + 1) / 2;
        net = new ConvBlock(inChannels, OutChannels, kernelSize: 1, padding: 0);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x, Tensor xSkip)
    {
        var y = net.call(x);
        var size = new[] { xSkip.shape[2], xSkip.shape[3] };
        y = mode == InterpolationMode.Nearest
            ? F.interpolate(y, size: size, mode: InterpolationMode.Nearest)   // darknet: each pixel copied into its 2x2 block
            : F.interpolate(y, size: size, mode: InterpolationMode.Bilinear, align_corners: true);
        return cat(new[] { y, xSkip }, dim: 1); // [B x (C/2 + C_skip) x H x W]
    }
}

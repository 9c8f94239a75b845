using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Detection;

/// <summary>A YOLOv3 detection head: a 3x3 conv block, then a 1x1 conv (with bias) to (1 + 4 + C) x K channels.</summary>
/// <remarks>Our channel layout is field-major, (1 + 4 + C) x K: channel = field * K + anchor, with
/// fields (objectness, tx, ty, tw, th, classes...). Darknet's is anchor-major K x (4 + 1 + C).</remarks>
public sealed class YoloHead : nn.Module<Tensor, Tensor>
{
    /// <summary>The 3x3 conv block.</summary>
    public readonly ConvBlock conv;
    /// <summary>The final 1x1 prediction conv (has a bias, no BN).</summary>
    public readonly Conv2d pred;

    /// <summary>Creates a head.</summary>
    public YoloHead(long inChannels, long midChannels, long numAnchors, long numClasses) : base(nameof(YoloHead))
    {
        conv = new ConvBlock(inChannels, midChannels);
        pred = nn.Conv2d(midChannels, (1 + 4 + numClasses) * numAnchors, 1);
        RegisterComponents();
        DetSeg.Runtime.ConvGuard.Protect(this); // narrow convs: oneDNN computes them wrong on some CPUs
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x) => pred.call(conv.call(x));
}

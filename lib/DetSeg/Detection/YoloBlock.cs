using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Detection;

/// <summary>YOLOv3's five conv blocks before each head: 1x1, 3x3 (x2 channels), 1x1, 3x3, 1x1.</summary>
public sealed class YoloBlock : nn.Module<Tensor, Tensor>
{
    private readonly ConvBlock c1, c2, c3, c4, c5;

    /// <summary>Creates a block from <paramref name="inChannels"/> to <paramref name="outChannels"/>.</summary>
    public YoloBlock(long inChannels, long outChannels) : base(nameof(YoloBlock))
    {
        long mid = outChannels * 2;
        c1 = new ConvBlock(inChannels, outChannels, kernelSize: 1, padding: 0);
        c2 = new ConvBlock(outChannels, mid);
        c3 = new ConvBlock(mid, outChannels, kernelSize: 1, padding: 0);
        c4 = new ConvBlock(outChannels, mid);
        c5 = new ConvBlock(mid, outChannels, kernelSize: 1, padding: 0);
        RegisterComponents();
    }

    /// <summary>The five blocks in darknet file order.</summary>
    internal IEnumerable<ConvBlock> Blocks() => new[] { c1, c2, c3, c4, c5 };

    /// <inheritdoc/>
    public override Tensor forward(Tensor x) => c5.call(c4.call(c3.call(c2.call(c1.call(x)))));
}

using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Segmentation;

/// <summary>A U-Net encoder step: <see cref="ConvBlock"/> then 2x2 max-pool; also returns the block's output as the skip.</summary>
public sealed class EncoderBlock : nn.Module<Tensor, (Tensor Down, Tensor Skip)>
{
    private readonly ConvBlock block;
    private readonly MaxPool2d max_pool;

    /// <summary>Maps <paramref name="numInput"/> channels to <paramref name="numOutput"/> and halves H and W (floor).</summary>
    public EncoderBlock(long numInput, long numOutput) : base(nameof(EncoderBlock))
    {
        block = new ConvBlock(numInput, numOutput);
        max_pool = nn.MaxPool2d(2);
        RegisterComponents();
    }

    /// <summary>[B x in x H x W] to (down [B x out x ⌊H/2⌋ x ⌊W/2⌋], skip [B x out x H x W]).</summary>
    public override (Tensor Down, Tensor Skip) forward(Tensor x)
    {
        var skip = block.call(x);
        return (DetSeg.Runtime.MaxPool.Forward(max_pool, skip), skip); // as max_pool.call(skip)
    }
}

using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Detection;

/// <summary>Darknet-53's residual unit: 1x1 conv to half the channels, 3x3 conv back, plus the input.</summary>
public sealed class ResidualUnit : nn.Module<Tensor, Tensor>
{
    private readonly ConvBlock reduce;
    private readonly ConvBlock expand;

    /// <summary>Creates a unit that keeps <paramref name="channels"/> channels.</summary>
    public ResidualUnit(long channels) : base(nameof(ResidualUnit))
    {
        reduce = new ConvBlock(channels, Math.Max(1, channels / 2), kernelSize: 1, padding: 0);
        expand = new ConvBlock(Math.Max(1, channels / 2), channels);
        RegisterComponents();
    }

    /// <summary>The reduce and expand blocks, in darknet file order.</summary>
    internal IEnumerable<ConvBlock> Blocks() { yield return reduce; yield return expand; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x) => expand.call(reduce.call(x)).add(x, Runtime.Scalars.OneL); // the residual ADD; alpha held (a + b makes a temporary one)

    /// <summary><paramref name="times"/> units in a row (the course's <c>ResidualUnit.repeated</c>).</summary>
    public static nn.Module<Tensor, Tensor> Repeated(long channels, int times) =>
        nn.Sequential(Enumerable.Range(0, times).Select(_ => (nn.Module<Tensor, Tensor>)new ResidualUnit(channels)).ToArray());
}

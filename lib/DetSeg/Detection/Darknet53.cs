using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Detection;

/// <summary>Width and depth multipliers for Darknet-53/YOLOv3: 1 and 1 is the paper's model.</summary>
/// <param name="Width">Multiplies every channel count (0.25: 8..256 channels instead of 32..1024).</param>
/// <param name="Depth">Multiplies the residual repeats 1/2/8/8/4 (at least one each; 0.25 gives 1/1/2/2/1).</param>
public sealed record ModelScale(double Width = 1.0, double Depth = 1.0)
{
    /// <summary>The paper's full-size model.</summary>
    public static ModelScale Full { get; } = new();

    /// <summary>Scaled channel count (at least 1).</summary>
    public long Channels(long c)
    {
        if (Width <= 0 || double.IsNaN(Width)) throw new ArgumentException($"Width multiplier must be > 0, got {Width}.");
        return Math.Max(1, (long)Math.Round(c * Width, MidpointRounding.AwayFromZero));
    }

    /// <summary>Scaled repeat count (at least 1).</summary>
    public int Repeats(int n)
    {
        if (Depth <= 0 || double.IsNaN(Depth)) throw new ArgumentException($"Depth multiplier must be > 0, got {Depth}.");
        return Math.Max(1, (int)Math.Round(n * Depth, MidpointRounding.ToEven));
    }
}

/// <summary>
/// Darknet-53, YOLOv3's feature extractor, split at its three routes like the course's
/// <c>backbone[0:7]</c>, <c>[7:9]</c>, <c>[9:11]</c>: strides 8, 16 and 32.
/// </summary>
public sealed class Darknet53 : nn.Module<Tensor, (Tensor r1, Tensor r2, Tensor r3)>
{
    /// <summary>Stem + stages up to route 1 (stride 8, 256 channels at full width).</summary>
    public readonly nn.Module<Tensor, Tensor> feature1;
    /// <summary>Stage to route 2 (stride 16, 512 channels).</summary>
    public readonly nn.Module<Tensor, Tensor> feature2;
    /// <summary>Stage to route 3 (stride 32, 1024 channels).</summary>
    public readonly nn.Module<Tensor, Tensor> feature3;

    /// <summary>Output channels of the three routes.</summary>
    public (long c1, long c2, long c3) RouteChannels { get; }

    /// <summary>Builds Darknet-53 for <paramref name="inChannels"/> input channels at <paramref name="scale"/> (default: full size).</summary>
    public Darknet53(long inChannels = 3, ModelScale? scale = null) : base(nameof(Darknet53))
    {
        if (inChannels < 1) throw new ArgumentException($"inChannels must be ≥ 1, got {inChannels}.", nameof(inChannels));
        var s = scale ?? ModelScale.Full;
        long C(long c) => s.Channels(c);
        feature1 = nn.Sequential(
            new ConvBlock(inChannels, C(32)),
            new ConvBlock(C(32), C(64), stride: 2),
            ResidualUnit.Repeated(C(64), s.Repeats(1)),
            new ConvBlock(C(64), C(128), stride: 2),
            ResidualUnit.Repeated(C(128), s.Repeats(2)),
            new ConvBlock(C(128), C(256), stride: 2),
            ResidualUnit.Repeated(C(256), s.Repeats(8)));   // <-- route 1 (S = I / 8)
        feature2 = nn.Sequential(
            new ConvBlock(C(256), C(512), stride: 2),
            ResidualUnit.Repeated(C(512), s.Repeats(8)));   // <-- route 2 (S = I / 16)
        feature3 = nn.Sequential(
            new ConvBlock(C(512), C(1024), stride: 2),
            ResidualUnit.Repeated(C(1024), s.Repeats(4)));  // <-- route 3 (S = I / 32)
        RouteChannels = (C(256), C(512), C(1024));
        RegisterComponents();
    }

    /// <summary>Every conv block in order (darknet's file order).</summary>
    internal IEnumerable<ConvBlock> Blocks()
    {
        foreach (var stage in new[] { feature1, feature2, feature3 })
            foreach (var child in stage.children())
                if (child is ConvBlock b) yield return b;
                else
                    foreach (var unit in child.children())
                        foreach (var u in ((ResidualUnit)unit).Blocks()) yield return u;
    }

    /// <inheritdoc/>
    public override (Tensor r1, Tensor r2, Tensor r3) forward(Tensor x)
    {
        var r1 = feature1.call(x);
        var r2 = feature2.call(r1);
        var r3 = feature3.call(r2);
        return (r1, r2, r3);
    }
}

using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Detection;

/// <summary>
/// The course's minimal three-scale detector: plain strided convs, one 3x3 prediction conv per scale.
/// Outputs like <see cref="BaseYOLOv3"/>: y1 (stride 32), y2 (16), y3 (8), each [B x (1 + 4 + C) x K x S x S].
/// </summary>
public sealed class SimpleDetector : nn.Module<Tensor, (Tensor y1, Tensor y2, Tensor y3)>
{
    private readonly nn.Module<Tensor, Tensor> net1, net2, net3, pred1, pred2, pred3;
    private readonly SpreadDim spreadDim;

    /// <summary>Builds the detector.</summary>
    public SimpleDetector(long numChannels, long numAnchors, long numClasses) : base(nameof(SimpleDetector))
    {
        long outChannels = numAnchors * (1 + 4 + numClasses);
        net1 = nn.Sequential(
            nn.Conv2d(numChannels, 32, 3, padding: 1), nn.ReLU(inplace: true),
            nn.Conv2d(32, 64, 3, stride: 2, padding: 1), nn.ReLU(inplace: true),
            nn.Conv2d(64, 128, 3, stride: 2, padding: 1), nn.ReLU(inplace: true),
            nn.Conv2d(128, 256, 3, stride: 2, padding: 1), nn.ReLU(inplace: true));
        net2 = nn.Sequential(nn.Conv2d(256, 512, 3, stride: 2, padding: 1), nn.ReLU(inplace: true));
        net3 = nn.Sequential(nn.Conv2d(512, 1024, 3, stride: 2, padding: 1), nn.ReLU(inplace: true));
        pred1 = nn.Conv2d(256, outChannels, 3, padding: 1);
        pred2 = nn.Conv2d(512, outChannels, 3, padding: 1);
        pred3 = nn.Conv2d(1024, outChannels, 3, padding: 1);
        spreadDim = new SpreadDim(new[] { 1 + 4 + numClasses }, dim: 1);
        RegisterComponents();
        DetSeg.Runtime.ConvGuard.Protect(this); // narrow convs: oneDNN computes them wrong on some CPUs
    }

    /// <inheritdoc/>
    public override (Tensor y1, Tensor y2, Tensor y3) forward(Tensor x)
    {
        x = net1.call(x);                   // [B x 256 x S/8 x S/8]
        var y3 = pred1.call(x);
        x = net2.call(x);                   // [B x 512 x S/16 x S/16]
        var y2 = pred2.call(x);
        x = net3.call(x);                   // [B x 1024 x S/32 x S/32]
        var y1 = pred3.call(x);
        return (spreadDim.call(y1), spreadDim.call(y2), spreadDim.call(y3));
    }
}

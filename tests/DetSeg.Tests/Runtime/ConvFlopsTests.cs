using DetSeg.Detection;
using DetSeg.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Runtime;

public class ConvFlopsTests
{
    [Fact]
    public void SmallNet_CountsEveryConvByHand()
    {
        // Conv 3 -> 16, 3x3, pad 1 on 8x8:           2·3·16·9·64   =  55,296 per image
        // Conv 16 -> 32, 3x3, stride 2, pad 1 -> 4x4: 2·16·32·9·16  = 147,456
        // ConvTranspose 32 -> 8, 2x2, stride 2 (4x4 in): 2·32·8·4·16 =  32,768
        // depthwise Conv 8 -> 8, groups 8, 3x3 on 8x8: 2·1·8·9·64    =   9,216     sum 244,736, x batch 2
        var net = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding: 1), nn.Conv2d(16, 32, 3, stride: 2, padding: 1),
            nn.ConvTranspose2d(32, 8, 2, stride: 2), nn.Conv2d(8, 8, 3, padding: 1, groups: 8));
        ConvGuard.Protect(net); // guarded layers still count (the guard hands the module an empty batch)
        var (flops, calls) = ConvFlops.Count(net, randn(2, 3, 8, 8));
        Assert.Equal(4, calls);
        Assert.Equal(2 * 244_736.0, flops);
    }

    [Fact]
    public void UNet_CountsEveryConvOnce_IncludingTheUpsamplingsThatRunAsPixelShuffle()
    {
        // The decoder's kernel-2 stride-2 transposed convs run as 1x1 conv + pixel shuffle (Runtime/TransposedConv);
        // they still cost their FLOPs. Hand count for each: 2·in·out·2·2 per input pixel.
        using var unet = new DetSeg.Segmentation.SemanticSegmentor(3, 2, 4);
        unet.eval();
        var convs = unet.modules().OfType<TorchSharp.Modules.Convolution>().ToList();
        var x = torch.zeros(1, 3, 32, 32);
        var (flops, calls) = ConvFlops.Count(unet, x);
        Assert.Equal(convs.Count, calls);
        var ups = convs.Where(c => c.transposed).ToList();
        Assert.Equal(4, ups.Count);
        // widths 4·16..4·2 → 4·8..4: input sides 2, 4, 8, 16 for the four upsamplings
        double upFlops = 2.0 * 64 * 32 * 4 * 2 * 2 + 2.0 * 32 * 16 * 4 * 4 * 4 + 2.0 * 16 * 8 * 4 * 8 * 8 + 2.0 * 8 * 4 * 4 * 16 * 16;
        Assert.True(flops > upFlops, $"{flops} vs the upsamplings' {upFlops}");
        // The same count twice: counting leaves the fast path as it was.
        Assert.Equal(flops, ConvFlops.Count(unet, x).Flops);
    }

    [Fact]
    public void YOLOv3_416_IsDarknetsFigure()
    {
        // darknet prints 65.879 BFLOPs for yolov3.cfg at 416x416 (75 convolutions; multiply-add = 2)
        var model = new YOLOv3(3, 80);
        model.eval();
        var x = zeros(1, 3, 416, 416);
        var (flops, calls) = ConvFlops.Count(x, () => model.call(x), model);
        Assert.Equal(75, calls);
        Assert.InRange(flops / 1e9, 65.8, 65.95);
    }
}

using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Data;

/// <summary>
/// The torchvision tensor transforms the course's augmentation uses, on float images in [0, 1]
/// (<c>[C x H x W]</c> or <c>[B x C x H x W]</c>), on the input's device. Formulas follow
/// <c>torchvision.transforms.functional_tensor</c>.
/// </summary>
public static class TensorTransforms
{
    /// <summary><c>clamp(ratio * a + (1 - ratio) * b, 0, 1)</c>, torchvision's <c>_blend</c>.</summary>
    static Tensor Blend(Tensor a, Tensor b, double ratio) => a.mul(ratio).add_(b.mul(1 - ratio)).clamp_(0, 1);

    /// <summary>ITU-R 601-2 luma, <c>[.. x 1 x H x W]</c>, as <c>rgb_to_grayscale</c>.</summary>
    public static Tensor Grayscale(Tensor image)
    {
        using var scope = NewDisposeScope();
        var (r, g, b) = (image.select(-3, 0), image.select(-3, 1), image.select(-3, 2));
        return r.mul(0.299).add_(g.mul(0.587)).add_(b.mul(0.114)).unsqueeze(-3).MoveToOuterDisposeScope();
    }

    /// <summary>Multiplies intensities by <paramref name="factor"/> (blend with black).</summary>
    public static Tensor AdjustBrightness(Tensor image, double factor) => image.mul(factor).clamp_(0, 1);

    /// <summary>Blends with the mean grey level of each image.</summary>
    public static Tensor AdjustContrast(Tensor image, double factor)
    {
        using var scope = NewDisposeScope();
        var mean = Grayscale(image).mean([-3L, -2L, -1L], keepdim: true);
        return Blend(image, mean, factor).MoveToOuterDisposeScope();
    }

    /// <summary>Blends with the grey version of the image.</summary>
    public static Tensor AdjustSaturation(Tensor image, double factor)
    {
        using var scope = NewDisposeScope();
        return Blend(image, Grayscale(image), factor).MoveToOuterDisposeScope();
    }

    /// <summary>Shifts the hue by <paramref name="factor"/> ∈ [-0.5, 0.5] of a turn: torchvision's <c>_rgb2hsv</c> /
    /// <c>_hsv2rgb</c> round trip, for <c>[.. x 3 x H x W]</c>.</summary>
    /// <remarks>Written here because TorchVision.NET 0.107's <c>adjust_hue</c> returns a 3-D image unchanged and takes
    /// ~16 ms for a 256² image (this: ~1 ms).</remarks>
    /// <exception cref="ArgumentException">The factor is outside [-0.5, 0.5] or the image has no 3-channel dim -3.</exception>
    public static Tensor AdjustHue(Tensor image, double factor)
    {
        if (factor is < -0.5 or > 0.5) throw new ArgumentException($"hue factor must be in [-0.5, 0.5], got {factor}.", nameof(factor));
        if (image.dim() < 3 || image.shape[^3] != 3)
            throw new ArgumentException($"AdjustHue needs an RGB image [.. x 3 x H x W], got [{string.Join(" x ", image.shape)}].", nameof(image));
        using var scope = NewDisposeScope();
        // _rgb2hsv
        var (r, g, b) = (image.select(-3, 0), image.select(-3, 1), image.select(-3, 2));
        var maxc = image.amax([-3L]);
        var minc = image.amin([-3L]);
        var eqc = maxc.eq(minc);
        var cr = maxc.sub(minc);
        var ones = ones_like(maxc);
        var s = cr.div(where(eqc, ones, maxc));
        var crDivisor = where(eqc, ones, cr);
        var rc = maxc.sub(r).div(crDivisor);
        var gc = maxc.sub(g).div(crDivisor);
        var bc = maxc.sub(b).div(crDivisor);
        var isR = maxc.eq(r);
        var isG = maxc.eq(g).logical_and(isR.logical_not());
        var isB = maxc.ne(g).logical_and(isR.logical_not());
        var hue = bc.sub(gc).mul(isR).add(rc.sub(bc).add(2.0).mul(isG)).add(gc.sub(rc).add(4.0).mul(isB));
        hue = hue.div(6.0).add(1.0).fmod(1.0);
        // shift
        hue = hue.add(factor).remainder(1.0);
        // _hsv2rgb: sector i = floor(6h) picks each channel from (v, q, p, t)
        var v = maxc;
        var h6 = hue.mul(6.0);
        var i = h6.floor();
        var f = h6.sub(i);
        var sector = i.to(ScalarType.Int64).remainder(6);
        var p = v.mul(s.neg().add(1.0)).clamp(0.0, 1.0);
        var q = v.mul(s.mul(f).neg().add(1.0)).clamp(0.0, 1.0);
        var t = v.mul(s.mul(f.neg().add(1.0)).neg().add(1.0)).clamp(0.0, 1.0);
        var candidates = stack([v, q, p, t], -3);                                   // [.. x 4 x H x W]
        // per sector, the candidate for (R, G, B): 0 (v,t,p) 1 (q,v,p) 2 (p,v,t) 3 (p,q,v) 4 (t,p,v) 5 (v,p,q)
        var table = tensor(new long[] { 0, 3, 2, 1, 0, 2, 2, 0, 3, 2, 1, 0, 3, 2, 0, 0, 2, 1 }, [6, 3], device: image.device);
        var pick = table.index_select(0, sector.flatten()).view([.. sector.shape, 3]);  // [.. x H x W x 3]
        var index = pick.movedim(new long[] { -1 }, new long[] { -3 });                                          // [.. x 3 x H x W]
        return candidates.gather(-3, index).MoveToOuterDisposeScope();
    }

    /// <summary>Gaussian blur with a square <paramref name="kernelSize"/> kernel and reflect padding.</summary>
    public static Tensor GaussianBlur(Tensor image, int kernelSize, double sigma)
    {
        using var scope = NewDisposeScope();
        // torchvision's _get_gaussian_kernel1d: x = linspace(-k//2, k//2), pdf = exp(-(x/sigma)^2/2), normalized.
        double half = (kernelSize - 1) * 0.5;
        var x = linspace(-half, half, kernelSize, ScalarType.Float32, image.device);
        var k1 = x.div(sigma).pow(2).mul(-0.5).exp();
        k1 = k1.div(k1.sum());                                                    // [k]
        var k2 = k1.unsqueeze(1).mul(k1.unsqueeze(0));                            // [k x k]
        bool batched = image.dim() == 4;
        var x4 = batched ? image : image.unsqueeze(0);                            // [B x C x H x W]
        long c = x4.shape[1];
        var weight = k2.expand(c, 1, kernelSize, kernelSize).to(image.dtype);     // [C x 1 x k x k]
        int p = kernelSize / 2;
        var padded = nn.functional.pad(x4, [p, p, p, p], PaddingModes.Reflect);
        var y = DetSeg.Runtime.ConvGuard.Conv2d(padded, weight, groups: c);     // one channel per group: oneDNN is unsafe
        return (batched ? y : y.squeeze(0)).MoveToOuterDisposeScope();
    }
}

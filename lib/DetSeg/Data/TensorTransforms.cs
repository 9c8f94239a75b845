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

    /// <summary>Shifts the hue by <paramref name="factor"/> ∈ [-0.5, 0.5] of a turn (torchvision's HSV round trip).</summary>
    public static Tensor AdjustHue(Tensor image, double factor)
    {
        if (factor is < -0.5 or > 0.5) throw new ArgumentException($"hue factor must be in [-0.5, 0.5], got {factor}.", nameof(factor));
        // TorchVision.NET 0.107's adjust_hue returns a 3-D [C x H x W] image unchanged; it works on [B x C x H x W].
        if (image.dim() != 3) return torchvision.transforms.functional.adjust_hue(image, factor);
        using var batched = image.unsqueeze(0);
        using var shifted = torchvision.transforms.functional.adjust_hue(batched, factor);
        return shifted.squeeze(0);
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
        var y = nn.functional.conv2d(padded, weight, groups: c);
        return (batched ? y : y.squeeze(0)).MoveToOuterDisposeScope();
    }
}

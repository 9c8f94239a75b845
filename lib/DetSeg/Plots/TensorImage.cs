using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;

namespace DetSeg.Plots;

/// <summary>Tensor images to PNG data URIs, copied to the host once.</summary>
static class TensorImage
{
    /// <summary>Height and width of an image tensor [3 x H x W], [1 x H x W] or [H x W].</summary>
    internal static (int H, int W) Size(torch.Tensor image, string name)
    {
        bool ok = image.ndim == 2 || image.ndim == 3 && (image.shape[0] == 1 || image.shape[0] == 3);
        if (!ok)
            throw new ArgumentException($"{name} must be an image [3 x H x W], [1 x H x W] or [H x W]; got shape [{string.Join(", ", image.shape)}].", name);
        return ((int)image.shape[^2], (int)image.shape[^1]);
    }

    /// <summary>
    /// An RGB PNG of <paramref name="image"/>: uint8 as is, floating point taken as [0, 1] (clamped);
    /// one channel is shown as grey.
    /// </summary>
    internal static string RgbPng(torch.Tensor image, string name)
    {
        var (h, w) = Size(image, name);
        using var scope = torch.NewDisposeScope();
        var t = image.detach();
        if (t.ndim == 2) t = t.unsqueeze(0);                      // [1 x H x W]
        if (t.shape[0] == 1) t = t.expand(3, h, w);               // [3 x H x W]
        if (t.dtype != torch.uint8)
            t = t.to(torch.float32).clamp(0, 1).mul(255).round().to(torch.uint8);
        t = t.permute(1, 2, 0).contiguous().cpu();                // [H x W x 3]
        byte[] bytes = t.data<byte>().ToArray();
        using var png = Image.LoadPixelData<Rgb24>(bytes, w, h);
        return DataUri(png);
    }

    /// <summary>
    /// A transparent PNG colouring each pixel of <paramref name="mask"/> [H x W] by its class id (class 0 and
    /// negative ids stay transparent), with the given opacity.
    /// </summary>
    internal static string MaskPng(torch.Tensor mask, double opacity)
    {
        int h = (int)mask.shape[0], w = (int)mask.shape[1];
        using var host = mask.detach().to(torch.int64).cpu();
        long[] ids = host.data<long>().ToArray();
        byte alpha = (byte)Math.Round(Math.Clamp(opacity, 0, 1) * 255);
        var pixels = new Rgba32[ids.Length];
        for (int i = 0; i < ids.Length; i++)
        {
            if (ids[i] <= 0) continue;
            var (r, g, b) = Palette.Rgb((int)(ids[i] - 1));
            pixels[i] = new Rgba32(r, g, b, alpha);
        }
        using var png = Image.LoadPixelData(pixels, w, h);
        return DataUri(png);
    }

    static string DataUri(Image image)
    {
        using var stream = new MemoryStream();
        image.SaveAsPng(stream);
        return "data:image/png;base64," + Convert.ToBase64String(stream.GetBuffer(), 0, (int)stream.Length);
    }
}

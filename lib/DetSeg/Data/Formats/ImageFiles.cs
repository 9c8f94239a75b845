using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using static TorchSharp.torch;

namespace DetSeg.Data.Formats;

/// <summary>Image files to and from [3 x H x W] uint8 tensors.</summary>
public static class ImageFiles
{
    /// <summary>Extensions read as images.</summary>
    public static readonly string[] Extensions = [".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"];

    /// <summary>True when the file name has an image extension.</summary>
    public static bool IsImage(string path) => Extensions.Contains(Path.GetExtension(path).ToLowerInvariant());

    /// <summary>Reads any ImageSharp format as RGB [3 x H x W] uint8. PNGs are checked first (chunk CRCs, then the
    /// image data inflated to its end), so a truncated or corrupted PNG is refused rather than decoded with rows
    /// filled in; images over <paramref name="maxPixels"/> are refused before decoding.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not a readable image, or a corrupt or oversized PNG; the message names the file.</exception>
    public static Tensor ReadRgb(string path, long maxPixels = PennFudan.DefaultMaxPixels)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Image not found: {path}", path);
        var bytes = File.ReadAllBytes(path);
        if (!Png.IsPng(bytes)) return PennFudan.DecodeRgb(bytes, path);
        var header = Png.Inspect(bytes, path, maxPixels);
        if (!Png.CanReadRgb(header)) Png.CheckImageData(bytes, path, header);
        return PennFudan.DecodeRgb(bytes, path, header);
    }

    /// <summary>Writes [3 x H x W] uint8 (or float in [0, 1]) as an RGB PNG, atomically.</summary>
    public static void WritePng(string path, Tensor image)
    {
        if (image.dim() != 3 || image.shape[0] != 3)
            throw new ArgumentException($"WritePng expects [3 x H x W], got [{string.Join(" x ", image.shape)}].", nameof(image));
        using var scope = NewDisposeScope();
        var bytes = image.dtype == ScalarType.Byte ? image : image.mul(255).round().clamp(0, 255).to(ScalarType.Byte);
        var hwc = bytes.permute(1, 2, 0).contiguous().cpu().data<byte>().ToArray();
        using var png = Image.LoadPixelData<Rgb24>(hwc, (int)image.shape[2], (int)image.shape[1]);
        Runtime.AtomicFile.Write(path, s => png.SaveAsPng(s));
    }

    /// <summary>Writes an id mask [H x W] (values 0–255) as an 8-bit grayscale PNG, atomically.</summary>
    public static void WriteMaskPng(string path, Tensor mask)
    {
        if (mask.dim() != 2) throw new ArgumentException($"WriteMaskPng expects [H x W], got [{string.Join(" x ", mask.shape)}].", nameof(mask));
        using var b = mask.clamp(0, 255).to(ScalarType.Byte).contiguous().cpu();
        using var png = Image.LoadPixelData<L8>(b.data<byte>().ToArray(), (int)mask.shape[1], (int)mask.shape[0]);
        Runtime.AtomicFile.Write(path, s => png.SaveAsPng(s));
    }
}

using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Detection;

/// <summary>The course's <c>square_image</c>: an image resized to fit a square and padded with grey, as YOLOv3 expects.</summary>
public static class Letterbox
{
    /// <summary>Loads an image file as [3 x size x size] float in [0, 1], aspect kept, centred on grey (128).</summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">The file is not a readable image.</exception>
    public static Tensor Load(string path, int size = YOLOv3.OriginalImageSize)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Image not found: {path}", path);
        if (size < 1) throw new ArgumentException($"size must be ≥ 1, got {size}.", nameof(size));
        Image<Rgb24> img;
        try { img = Image.Load<Rgb24>(path); }
        catch (Exception e) when (e is ImageFormatException or UnknownImageFormatException or NotSupportedException)
        { throw new InvalidDataException($"{path}: corrupt or unsupported image ({e.Message}).", e); }
        using (img)
        {
            double scale = Math.Min((double)size / img.Width, (double)size / img.Height);
            int w = Math.Max(1, (int)Math.Round(img.Width * scale)), h = Math.Max(1, (int)Math.Round(img.Height * scale));
            img.Mutate(c => c.Resize(w, h));
            var pixels = new byte[w * h * 3];
            img.CopyPixelDataTo(pixels);
            var hwc = tensor(pixels, new long[] { h, w, 3 }, ScalarType.Byte);       // [H x W x 3]
            var chw = hwc.permute(2, 0, 1).to(float32) / 255;                        // [3 x H x W]
            var canvas = full(3, size, size, 128 / 255f);
            int top = (size - h) / 2, left = (size - w) / 2;
            canvas[.., top..(top + h), left..(left + w)] = chw;
            return canvas;
        }
    }
}

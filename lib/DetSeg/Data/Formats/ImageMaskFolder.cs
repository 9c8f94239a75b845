using static TorchSharp.torch;

namespace DetSeg.Data.Formats;

/// <summary>
/// Images with instance-mask PNGs beside them, Penn-Fudan's layout generalised: <c>IMAGES/NAME.ext</c> and
/// <c>MASKS/NAME{suffix}.png</c>, where a mask pixel is 0 for background and k for object k (8-bit grayscale or
/// palette PNGs; palette indices are read as ids). Boxes are derived from the masks; every object has class 0.
/// </summary>
/// <remarks>Penn-Fudan itself: <c>new ImageMaskFolder(root, "PNGImages", "PedMasks", "_mask", ["pedestrian"])</c>.</remarks>
public sealed class ImageMaskFolder : IAnnotatedDataset
{
    readonly string[] files;

    /// <summary>Lists the images that have a mask; an image without one is an error naming both paths.</summary>
    public ImageMaskFolder(string root, string images = "images", string masks = "masks", string maskSuffix = "", IReadOnlyList<string>? classes = null)
    {
        ImageFolder = Path.Combine(Path.GetFullPath(root), images);
        MaskFolder = Path.Combine(Path.GetFullPath(root), masks);
        MaskSuffix = maskSuffix;
        if (!Directory.Exists(ImageFolder)) throw new DirectoryNotFoundException($"Image folder {ImageFolder} does not exist.");
        files = Directory.GetFiles(ImageFolder).Where(ImageFiles.IsImage).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;
        foreach (var f in files)
            if (!File.Exists(MaskPath(f))) throw new FileNotFoundException($"Image {Path.Combine(ImageFolder, f)} has no mask {MaskPath(f)}.", MaskPath(f));
        Classes = classes ?? ["object"];
    }

    /// <summary>Where the images are.</summary>
    public string ImageFolder { get; }
    /// <summary>Where the masks are.</summary>
    public string MaskFolder { get; }
    /// <summary>Added to an image's name (before .png) to name its mask.</summary>
    public string MaskSuffix { get; }
    /// <inheritdoc/>
    public IReadOnlyList<string> Classes { get; }
    /// <inheritdoc/>
    public int Count => files.Length;

    string MaskPath(string imageFile) => Path.Combine(MaskFolder, Path.GetFileNameWithoutExtension(imageFile) + MaskSuffix + ".png");

    /// <inheritdoc/>
    public AnnotatedImage this[int index]
    {
        get
        {
            DatasetExtensions.CheckIndex(index, Count, "ImageMaskFolder");
            string imagePath = Path.Combine(ImageFolder, files[index]), maskPath = MaskPath(files[index]);
            var image = ImageFiles.ReadRgb(imagePath);
            var bytes = File.ReadAllBytes(maskPath);
            var mask = PennFudan.DecodeMask(bytes, maskPath, Png.Inspect(bytes, maskPath, long.MaxValue));
            if (mask.shape[0] != image.shape[1] || mask.shape[1] != image.shape[2])
            {
                var (ms, ims) = (mask.shape, image.shape); image.Dispose(); mask.Dispose();
                throw new InvalidDataException($"Mask {maskPath} is {ms[1]} x {ms[0]} but image {imagePath} is {ims[2]} x {ims[1]} (width x height).");
            }
            long n = mask.max().item<long>();
            var boxes = MaskBoxes.FromInstanceMask(mask, n);
            return new AnnotatedImage(files[index], image, boxes, zeros(n, ScalarType.Int64), mask);
        }
    }
}

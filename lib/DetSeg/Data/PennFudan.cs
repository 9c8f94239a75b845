using System.IO.Compression;
using System.Runtime.InteropServices;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Data;

/// <summary>One Penn-Fudan image with its instance mask. Dispose it (or let a dispose scope do it).</summary>
/// <param name="Name">The file stem, e.g. <c>FudanPed00001</c>.</param>
/// <param name="Image">RGB image, <c>[3 x H x W]</c> uint8.</param>
/// <param name="Mask">Instance mask, <c>[H x W]</c> int64: 0 background, 1..n pedestrians (the stored ids).</param>
public sealed record PennFudanItem(string Name, Tensor Image, Tensor Mask) : IDisposable
{
    /// <summary>Frees both tensors.</summary>
    public void Dispose()
    {
        Image.Dispose();
        Mask.Dispose();
    }
}

/// <summary>
/// The Penn-Fudan pedestrian dataset (170 images): <c>PNGImages/*.png</c> sorted by name, each with
/// <c>PedMasks/&lt;name&gt;_mask.png</c>. Masks may be gray (8 or 16 bits, with or without alpha) or palette PNGs;
/// the stored ids are returned either way. Files are checked before decoding: a truncated PNG, a chunk whose CRC
/// fails, image data that does not inflate to exactly the image's size, a size mismatch or an image above
/// <see cref="MaxPixels"/> raises an <see cref="InvalidDataException"/> naming the file.
/// </summary>
public sealed class PennFudan : IDataset<PennFudanItem>, IResizedItemSource
{
    /// <summary>The canonical archive.</summary>
    public const string Url = "https://www.cis.upenn.edu/~jshi/ped_html/PennFudanPed.zip";
    /// <summary>md5 of <see cref="Url"/>.</summary>
    public const string Md5 = "5aaa3dee905cef73325923716e38fc6d";
    /// <summary>The course's per-channel mean (RGB, in [0, 1]).</summary>
    public static readonly float[] Mean = [0.4398f, 0.4445f, 0.4062f];
    /// <summary>The course's per-channel standard deviation.</summary>
    public static readonly float[] Std = [0.2635f, 0.2507f, 0.2577f];
    /// <summary>Default pixel limit per image (PIL's decompression-bomb threshold).</summary>
    public const long DefaultMaxPixels = 89_478_485;

    readonly string[] names;

    /// <summary>Opens the dataset at <paramref name="root"/> (default <c>$DETSEG_DATA/PennFudanPed</c>).</summary>
    /// <param name="root">The <c>PennFudanPed</c> folder.</param>
    /// <param name="download">Download and extract the archive (md5-checked) when the folder is missing.</param>
    /// <param name="maxPixels">Images or masks with more pixels are refused before decoding.</param>
    /// <exception cref="DataUnavailableException">The folder is missing and cannot be downloaded.</exception>
    /// <exception cref="InvalidDataException">The folder holds no images.</exception>
    public PennFudan(string? root = null, bool download = true, long maxPixels = DefaultMaxPixels)
    {
        Root = Path.GetFullPath(root ?? Runtime.DataPaths.Under("PennFudanPed"));
        MaxPixels = maxPixels;
        if (!Directory.Exists(Path.Combine(Root, "PNGImages")))
        {
            if (!download)
                throw new DataUnavailableException($"Penn-Fudan not found: {Path.Combine(Root, "PNGImages")} does not exist. Extract {Url} (md5 {Md5}) so that it holds PNGImages/ and PedMasks/, or pass download: true.");
            DownloadTo(Root);
        }
        names = Directory.GetFiles(Path.Combine(Root, "PNGImages"), "*.png")
            .Select(p => Path.GetFileNameWithoutExtension(p)).Order(StringComparer.Ordinal).ToArray();
        if (names.Length == 0)
            throw new InvalidDataException($"{Path.Combine(Root, "PNGImages")} holds no .png images.");
    }

    /// <summary>The <c>PennFudanPed</c> folder.</summary>
    public string Root { get; }
    /// <summary>The largest image (width x height) decoded; larger files are refused.</summary>
    public long MaxPixels { get; set; }
    /// <summary>The image names (file stems), sorted ordinally like Python's <c>sorted</c>.</summary>
    public IReadOnlyList<string> FileNames => names;
    /// <inheritdoc/>
    public int Count => names.Length;

    /// <inheritdoc/>
    public PennFudanItem this[int index]
    {
        get
        {
            DatasetExtensions.CheckIndex(index, Count, "PennFudan");
            return this[names[index]];
        }
    }

    /// <summary>The item with file stem <paramref name="name"/>.</summary>
    /// <exception cref="FileNotFoundException">No such image or mask.</exception>
    /// <exception cref="InvalidDataException">A corrupt/truncated PNG, an image over <see cref="MaxPixels"/>, or image and mask sizes differ.</exception>
    public PennFudanItem this[string name]
    {
        get
        {
            var f = ReadPair(name, verifyImageData: true);
            var image = DecodeRgb(f.ImageBytes, f.ImageFile, f.Image);
            var mask = DecodeMask(f.MaskBytes, f.MaskFile, f.Mask);
            return new PennFudanItem(name, image, mask);
        }
    }

    /// <inheritdoc/>
    /// <remarks>The files get the indexer's checks; images and masks <see cref="Png"/> decodes itself are sampled as
    /// their rows are unfiltered (no full-size tensors), others are decoded whole and resized.</remarks>
    public PennFudanItem ReadResized(int index, int longerSide, out int width)
    {
        DatasetExtensions.CheckIndex(index, Count, "PennFudan");
        if (longerSide < 1) throw new ArgumentOutOfRangeException(nameof(longerSide), longerSide, "The longer side must be ≥ 1.");
        string name = names[index];
        var f = ReadPair(name, verifyImageData: true);
        width = f.Image.Width;
        var (h, w) = PFSegmentation.ResizedSize(f.Image.Height, f.Image.Width, longerSide);
        var rows = Array.ConvertAll(PFSegmentation.NearestIndices(f.Image.Height, h), i => (int)i);
        var cols = Array.ConvertAll(PFSegmentation.NearestIndices(f.Image.Width, w), i => (int)i);
        Tensor image, mask;
        if (Png.CanReadRgb(f.Image))
        {
            image = empty([3, h, w], ScalarType.Byte, device: CPU);                      // [3 x h x w]
            try { Png.ReadRgb(f.ImageBytes, f.ImageFile, f.Image, image.bytes, rows, cols); }
            catch { image.Dispose(); throw; }
        }
        else
        {
            using var whole = DecodeRgb(f.ImageBytes, f.ImageFile, f.Image);
            image = PFSegmentation.ResizeLonger(whole, longerSide);
        }
        try
        {
            if (StoresIds(f.Mask))
            {
                mask = empty([h, w], ScalarType.Int64, device: CPU);                      // [h x w]
                try { Png.ReadIndices(f.MaskBytes, f.MaskFile, f.Mask, MemoryMarshal.Cast<byte, long>(mask.bytes), rows, cols); }
                catch { mask.Dispose(); throw; }
            }
            else
            {
                using var whole = DecodeMask(f.MaskBytes, f.MaskFile, f.Mask);
                mask = PFSegmentation.ResizeLonger(whole, longerSide);
            }
        }
        catch { image.Dispose(); throw; }
        return new PennFudanItem(name, image, mask);
    }

    /// <summary>Only the instance mask of item <paramref name="index"/> (<c>[H x W]</c> int64), checked against the
    /// image's size from its header without decoding the image: cheap enough for dataset statistics.</summary>
    /// <exception cref="InvalidDataException">Corrupt files or a size mismatch, as for the indexer.</exception>
    public Tensor ReadMask(int index)
    {
        DatasetExtensions.CheckIndex(index, Count, "PennFudan");
        var f = ReadPair(names[index], verifyImageData: false);
        return DecodeMask(f.MaskBytes, f.MaskFile, f.Mask);
    }

    /// <summary>The image and mask files of an item, read, checked (<see cref="ReadChecked"/>) and of the same size.</summary>
    readonly record struct Files(string ImageFile, byte[] ImageBytes, PngHeader Image, string MaskFile, byte[] MaskBytes, PngHeader Mask);

    Files ReadPair(string name, bool verifyImageData)
    {
        string imageFile = Path.Combine(Root, "PNGImages", name + ".png");
        string maskFile = Path.Combine(Root, "PedMasks", name + "_mask.png");
        var (imageBytes, image) = ReadChecked(imageFile, verifyImageData);
        var (maskBytes, mask) = ReadChecked(maskFile);
        if (image.Width != mask.Width || image.Height != mask.Height)
            throw new InvalidDataException($"{name}: image {imageFile} is {image.Width} x {image.Height} but mask {maskFile} is {mask.Width} x {mask.Height} (width x height).");
        return new Files(imageFile, imageBytes, image, maskFile, maskBytes, mask);
    }

    /// <summary>Whether <see cref="Png.ReadIndices(ReadOnlySpan{byte}, string, PngHeader, Span{long})"/> reads this
    /// mask's stored ids: non-interlaced gray, gray+alpha or palette.</summary>
    static bool StoresIds(PngHeader mask) => mask.ColorType is 0 or 3 or 4 && !mask.Interlaced;

    // Files ImageSharp decodes (16-bit, interlaced) whose image data passed Png.CheckImageData in this process, by
    // path, length and write time: an epoch re-reads every image, and a second inflate would cost about half a decode.
    static readonly System.Collections.Concurrent.ConcurrentDictionary<(string Path, long Length, DateTime Written), bool> Verified = new();

    /// <summary>Reads a PNG and checks its structure and CRCs; with <paramref name="verifyImageData"/>, its image data
    /// too (once per file version and process) where ImageSharp will decode it, as ImageSharp does not notice
    /// missing rows (<see cref="Png.ReadRgb(ReadOnlySpan{byte}, string, PngHeader, Span{byte})"/> checks the image data itself as it decodes).</summary>
    (byte[] Bytes, PngHeader Header) ReadChecked(string path, bool verifyImageData = false)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"Penn-Fudan file missing: {path}", path);
        var bytes = File.ReadAllBytes(path);
        if (!verifyImageData) return (bytes, Png.Inspect(bytes, path, MaxPixels));
        var inspected = Png.Inspect(bytes, path, MaxPixels);
        if (Png.CanReadRgb(inspected)) return (bytes, inspected);
        var key = (path, (long)bytes.Length, info.LastWriteTimeUtc);
        if (Verified.ContainsKey(key)) return (bytes, inspected);
        Png.CheckImageData(bytes, path, inspected);
        Verified[key] = true;
        return (bytes, inspected);
    }

    /// <summary>Decodes an image into <c>[3 x H x W]</c> uint8 (the bytes PIL's <c>convert("RGB")</c> gives). A PNG
    /// whose header <see cref="Png.Inspect"/> gave is decoded by <see cref="Png.ReadRgb(ReadOnlySpan{byte}, string, PngHeader, Span{byte})"/>, which checks its image data
    /// on the way, where it can (8-bit, not interlaced); any other PNG must have passed <see cref="Png.Verify"/>
    /// (ImageSharp fills in missing rows without a word).</summary>
    internal static Tensor DecodeRgb(byte[] bytes, string path, PngHeader? png = null)
    {
        if (png is { } header && Png.CanReadRgb(header))
        {
            // Decoded in host memory, the tensor's own: the dataset moves it to its device.
            var image = empty([3, header.Height, header.Width], ScalarType.Byte, device: CPU);   // [3 x H x W]
            try { Png.ReadRgb(bytes, path, header, image.bytes); }
            catch { image.Dispose(); throw; }
            return image;
        }
        try
        {
            using var img = Image.Load<Rgb24>(bytes);
            var pixels = new byte[img.Width * img.Height * 3];
            img.CopyPixelDataTo(pixels);
            using var hwc = tensor(pixels, [img.Height, img.Width, 3], ScalarType.Byte);  // [H x W x 3]
            return hwc.permute(2, 0, 1).contiguous();                                       // [3 x H x W]
        }
        catch (Exception e) when (e is ImageFormatException or UnknownImageFormatException or NotSupportedException)
        {
            throw new InvalidDataException($"{path}: corrupt or unsupported image ({e.Message}).", e);
        }
    }

    /// <summary>Decodes a mask's stored ids into <c>[H x W]</c> int64: gray levels or palette indices
    /// (ImageSharp would turn palette indices into colours).</summary>
    internal static Tensor DecodeMask(byte[] bytes, string path, PngHeader header)
    {
        if (StoresIds(header))
        {
            var ids = empty([header.Height, header.Width], ScalarType.Int64, device: CPU);   // [H x W]
            try { Png.ReadIndices(bytes, path, header, MemoryMarshal.Cast<byte, long>(ids.bytes)); }
            catch { ids.Dispose(); throw; }
            return ids;
        }
        if (header.ColorType == 3)
            throw new InvalidDataException($"{path}: interlaced palette masks are not supported; re-save it without interlacing.");
        // ImageSharp's 8-bit conversion would divide 16-bit ids by 257 (ids 1..256 all become 0).
        if (header.BitDepth == 16)
            throw new InvalidDataException($"{path}: 16-bit {(header.Interlaced ? "interlaced" : $"color type {header.ColorType}")} masks are not supported (their ids would be scaled to 8 bits); save the mask as a non-interlaced gray PNG.");
        Png.CheckImageData(bytes, path, header);
        try
        {
            // RGB, RGBA or interlaced gray: ids survive as gray levels.
            using var img = Image.Load<L8>(bytes);
            var pixels = new byte[img.Width * img.Height];
            img.CopyPixelDataTo(pixels);
            using var t = tensor(pixels, [img.Height, img.Width], ScalarType.Byte);
            return t.to(ScalarType.Int64);
        }
        catch (Exception e) when (e is ImageFormatException or UnknownImageFormatException or NotSupportedException)
        {
            throw new InvalidDataException($"{path}: corrupt or unsupported mask ({e.Message}).", e);
        }
    }

    /// <summary><c>(image - mean) / std</c> per channel for <c>[3 x H x W]</c> or <c>[B x 3 x H x W]</c> floats in [0, 1], on the input's device.</summary>
    public static Tensor Normalize(Tensor image)
    {
        using var scope = NewDisposeScope();
        var (mean, std) = Stats(image);
        return image.sub(mean).div_(std).MoveToOuterDisposeScope();
    }

    /// <summary><c>normalized * std + mean</c>, the inverse of <see cref="Normalize"/>.</summary>
    public static Tensor Denormalize(Tensor image)
    {
        using var scope = NewDisposeScope();
        var (mean, std) = Stats(image);
        return image.mul(std).add_(mean, DetSeg.Runtime.Scalars.OneL).MoveToOuterDisposeScope(); // held alpha (Runtime/Scalars)
    }

    static (Tensor Mean, Tensor Std) Stats(Tensor image)
    {
        if (image.dim() < 3 || image.shape[^3] != 3)
            throw new ArgumentException($"Expected an RGB image [3 x H x W] or [B x 3 x H x W], got [{string.Join(" x ", image.shape)}].", nameof(image));
        var mean = tensor(Mean, [3, 1, 1], dtype: image.dtype, device: image.device);
        var std = tensor(Std, [3, 1, 1], dtype: image.dtype, device: image.device);
        return (mean, std);
    }

    /// <summary>Downloads (md5-checked, resumable) and extracts the archive so that <paramref name="root"/> holds the dataset.</summary>
    /// <exception cref="InvalidDataException">The archive is not a readable zip or lacks PennFudanPed/PNGImages; it is
    /// deleted (the next call downloads it again) and the message names it.</exception>
    internal static void DownloadTo(string root, IReadOnlyList<string>? urls = null, string? md5 = Md5, TextWriter? progress = null)
    {
        string parent = Path.GetDirectoryName(root)!;
        Directory.CreateDirectory(parent);
        RemoveStaleExtractions(parent);
        string zip = Download.EnsureFile(Path.Combine(parent, "PennFudanPed.zip"), urls ?? [Url], md5, progress);
        string staging = Path.Combine(parent, $"{ExtractTag}{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            try
            {
                ZipFile.ExtractToDirectory(zip, staging);
            }
            catch (InvalidDataException e)
            {
                File.Delete(zip);
                throw new InvalidDataException($"{zip} is not a readable zip archive ({e.Message}). It was deleted; the next run downloads it again.", e);
            }
            string extracted = Path.Combine(staging, "PennFudanPed");
            if (!Directory.Exists(Path.Combine(extracted, "PNGImages")))
            {
                File.Delete(zip);
                throw new InvalidDataException($"{zip}: the archive has no PennFudanPed/PNGImages folder. It was deleted; the next run downloads it again.");
            }
            if (Directory.Exists(root) && !Directory.EnumerateFileSystemEntries(root).Any()) Directory.Delete(root);
            Directory.Move(extracted, root);  // atomic on one file system: never a half-extracted dataset
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
    }

    const string ExtractTag = ".PennFudanPed-extract-";

    /// <summary>Deletes staging folders of extractions whose process was killed (named with its process id).</summary>
    static void RemoveStaleExtractions(string parent)
    {
        foreach (var dir in Directory.EnumerateDirectories(parent, ExtractTag + "*"))
        {
            var rest = Path.GetFileName(dir)[ExtractTag.Length..];
            int dash = rest.IndexOf('-');
            if (dash > 0 && int.TryParse(rest.AsSpan(0, dash), out int pid) && !Runtime.AtomicFile.IsAlive(pid))
                Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The image with its instance mask overlaid (the course's <c>imshow</c>); a random item when
    /// <paramref name="index"/> is null.</summary>
    public Plots.Figure Show(int? index = null)
    {
        int i = index ?? Random.Shared.Next(Count);
        using var item = this[i];
        return Plots.Charts.Mask(item.Image, item.Mask, title: $"{i}: {item.Name}");
    }

    /// <inheritdoc/>
    public override string ToString() => $"PennFudan(num_images={Count})";
}

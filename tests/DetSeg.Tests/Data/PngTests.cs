using System.IO.Compression;
using DetSeg.Data;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;
using static TorchSharp.torch;

namespace DetSeg.Tests.Data;

/// <summary>Corruption that decoders pass silently must be refused, naming the file.</summary>
public class PngTests
{
    static string MaskPath(string root, int k) => Path.Combine(root, "PedMasks", $"Ped{k:00000}_mask.png");
    static string ImagePath(string root, int k) => Path.Combine(root, "PNGImages", $"Ped{k:00000}.png");

    /// <summary>Gray 8-bit scanlines, filter 0, pixel value (x + y) % 4.</summary>
    static byte[] GrayRows(int w, int h) =>
        Enumerable.Range(0, h).SelectMany(y => new[] { (byte)0 }.Concat(Enumerable.Range(0, w).Select(x => (byte)((x + y) % 4)))).ToArray();

    [Fact]
    public void FlippedByteInsideIdat_FailsTheChunkCrc()
    {
        string root = Fixtures.PennFudanFolder(2);   // mask 0 is gray: its IDAT follows IHDR
        var m = File.ReadAllBytes(MaskPath(root, 0));
        m[8 + 25 + 8 + 5] ^= 0x01;   // one bit inside the IDAT data; the chunk's CRC is left as it was
        File.WriteAllBytes(MaskPath(root, 0), m);
        var e = Assert.Throws<InvalidDataException>(() => new PennFudan(root, download: false)[0]);
        Assert.Contains("Ped00000_mask.png", e.Message);
        Assert.Contains("CRC mismatch in chunk 'IDAT'", e.Message);
    }

    [Fact]
    public void FlippedByteBeforeTheCrcWasComputed_FailsTheZlibAdler32()
    {
        // Stored (uncompressed) deflate blocks inflate to the full length whatever the byte: only Adler-32 can tell.
        string root = Fixtures.PennFudanFolder(1);
        var png = Fixtures.PngRaw(8, 6, 8, 0, GrayRows(8, 6), CompressionLevel.NoCompression);
        var (w, h, depth, type, idat) = Fixtures.SplitPng(png);
        idat[idat.Length - 4 - 10] ^= 0x02;   // a sample near the end of the image, then the CRC recomputed over it
        File.WriteAllBytes(MaskPath(root, 0), Fixtures.PngWithIdat(w, h, depth, type, idat));
        var e = Assert.Throws<InvalidDataException>(() => new PennFudan(root, download: false)[0]);
        Assert.Contains("Ped00000_mask.png", e.Message);
        Assert.Contains("Adler-32 checksum", e.Message);
    }

    [Fact]
    public void RgbImageWithHalfItsRowsMissing_IsRefused_NotFilledIn()
    {
        string root = Fixtures.PennFudanFolder(1);
        // A valid zlib stream (Adler-32 and CRCs right) that holds only the first 3 of the image's 6 rows.
        var rows = Enumerable.Range(0, 3).SelectMany(y => new[] { (byte)0 }.Concat(Enumerable.Range(0, 8 * 3).Select(i => (byte)(i * 7 + y)))).ToArray();
        File.WriteAllBytes(ImagePath(root, 0), Fixtures.PngRaw(8, 6, 8, 2, rows));
        // ImageSharp alone decodes it without an error (the missing rows come back black).
        using (var img = Image.Load<Rgb24>(ImagePath(root, 0))) Assert.Equal(6, img.Height);
        var e = Assert.Throws<InvalidDataException>(() => new PennFudan(root, download: false)[0]);
        Assert.Contains("Ped00000.png", e.Message);
        Assert.Contains("inflates to 75 of the 150 bytes", e.Message);   // 6 rows x (1 filter byte + 8 x 3 samples)
    }

    [Fact]
    public void ImageChangedAfterAGoodRead_IsCheckedAgain()
    {
        // Image data is verified once per file version; a file rewritten since must not ride on the old verdict.
        string root = Fixtures.PennFudanFolder(1);
        var ds = new PennFudan(root, download: false);
        using (var first = ds[0]) Assert.Equal(6, first.Image.shape[1]);
        var rows = Enumerable.Range(0, 3).SelectMany(y => new[] { (byte)0 }.Concat(Enumerable.Range(0, 8 * 3).Select(i => (byte)(i * 7 + y)))).ToArray();
        File.WriteAllBytes(ImagePath(root, 0), Fixtures.PngRaw(8, 6, 8, 2, rows));
        File.SetLastWriteTimeUtc(ImagePath(root, 0), DateTime.UtcNow.AddMinutes(1));
        var e = Assert.Throws<InvalidDataException>(() => ds[0]);
        Assert.Contains("inflates to 75 of the 150 bytes", e.Message);
    }

    [Fact]
    public void ImageDataLongerThanTheImage_IsRefused()
    {
        string root = Fixtures.PennFudanFolder(1);
        File.WriteAllBytes(MaskPath(root, 0), Fixtures.PngRaw(8, 6, 8, 0, GrayRows(8, 7)));   // 7 rows for a 6-row header
        var e = Assert.Throws<InvalidDataException>(() => new PennFudan(root, download: false)[0]);
        Assert.Contains("Ped00000_mask.png", e.Message);
        Assert.Contains("more than the 54 bytes", e.Message);
    }

    [Fact]
    public void SixteenBitGrayAlphaMask_GivesTheStoredIds()
    {
        string root = Fixtures.PennFudanFolder(1);
        // 8 x 6, 16-bit gray + 16-bit alpha: id (x % 3) + 256 * (y == 5) big-endian, alpha 65535.
        int W = 8, H = 6;
        var rows = new List<byte>();
        var expected = new long[W * H];
        for (int y = 0; y < H; y++)
        {
            rows.Add(0);
            for (int x = 0; x < W; x++)
            {
                int id = x % 3 + (y == 5 ? 256 : 0);
                expected[y * W + x] = id;
                rows.AddRange([(byte)(id >> 8), (byte)id, 0xFF, 0xFF]);
            }
        }
        File.WriteAllBytes(MaskPath(root, 0), Fixtures.PngRaw(W, H, 16, 4, rows.ToArray()));
        using var item = new PennFudan(root, download: false)[0];
        Assert.Equal(expected, item.Mask.data<long>().ToArray());
    }

    [Fact]
    public void SixteenBitRgbMask_IsRefusedClearly()
    {
        string root = Fixtures.PennFudanFolder(1);
        var rows = Enumerable.Range(0, 6).SelectMany(_ => new byte[1 + 8 * 6]).ToArray();
        File.WriteAllBytes(MaskPath(root, 0), Fixtures.PngRaw(8, 6, 16, 2, rows));
        var e = Assert.Throws<InvalidDataException>(() => new PennFudan(root, download: false)[0]);
        Assert.Contains("Ped00000_mask.png", e.Message);
        Assert.Contains("16-bit", e.Message);
    }

    [Fact]
    public void InterlacedImageFromAnotherEncoder_PassesVerify_AndDecodes()
    {
        // ImageSharp's Adam7 writer checks the seven-pass length rule independently of ours.
        string root = Fixtures.PennFudanFolder(1);
        using (var img = new Image<Rgb24>(8, 6))
        {
            for (int y = 0; y < 6; y++)
                for (int x = 0; x < 8; x++) img[x, y] = new Rgb24((byte)(x * 10), (byte)(y * 10), 7);
            img.SaveAsPng(ImagePath(root, 0), new PngEncoder { InterlaceMethod = PngInterlaceMode.Adam7, ColorType = PngColorType.Rgb });
        }
        var bytes = File.ReadAllBytes(ImagePath(root, 0));
        Assert.True(Png.Verify(bytes, "x.png", long.MaxValue).Interlaced);
        using var item = new PennFudan(root, download: false)[0];
        Assert.Equal(new byte[] { 40, 20, 7 }, item.Image[.., 2, 4].data<byte>().ToArray());
    }

    [Fact]
    public void Crc32_MatchesTheStandardCheckValue()
    {
        // CRC-32/ISO-HDLC of "123456789" is 0xCBF43926 (the catalogue's check value, as zlib's crc32 gives).
        Assert.Equal(0xCBF43926u, Png.Crc32("123456789"u8));
        Assert.Equal(0u, Png.Crc32([]));
    }

    [Fact]
    public void Crc32_FoldedByCarrylessMultiplication_EqualsTheBytewiseLoop()
    {
        // The folded path takes 64 bytes and more; lengths around its 16- and 64-byte steps, and a file's worth.
        var rng = new Random(7);
        foreach (int n in new[] { 63, 64, 65, 79, 80, 95, 127, 128, 129, 143, 1000, 4096, 65_537, 300_001 })
        {
            var data = new byte[n];
            rng.NextBytes(data);
            Assert.Equal(Fixtures.Crc32(data), Png.Crc32(data));
        }
    }

    public static TheoryData<int, int, int> FilteredImages => new()
    {
        // colour type, width, height: 3-byte pixels stop the vector steps one pixel early, so odd and tiny widths.
        { 2, 1, 5 }, { 2, 2, 5 }, { 2, 17, 11 }, { 2, 64, 33 }, { 6, 1, 5 }, { 6, 13, 9 }, { 6, 31, 17 }, { 0, 19, 7 }, { 4, 11, 6 }, { 3, 15, 6 },
    };

    static int Channels(int colorType) => colorType switch { 0 or 3 => 1, 4 => 2, 2 => 3, _ => 4 };

    /// <summary>Channel <paramref name="k"/> of source pixel <paramref name="p"/> as PIL's <c>convert("RGB")</c> gives it.</summary>
    static byte ExpectedRgb(int colorType, byte[] samples, byte[]? palette, int p, int k) => colorType switch
    {
        2 or 6 => samples[p * Channels(colorType) + k],
        0 => samples[p],
        4 => samples[2 * p],
        _ => palette![3 * samples[p] + k],
    };

    [Theory]
    [MemberData(nameof(FilteredImages))]
    public void ReadRgb_UndoesEveryFilter_ForEveryColourType(int colorType, int width, int height)
    {
        int channels = Channels(colorType);
        var rng = new Random(colorType * 1000 + width);
        var samples = new byte[width * height * channels];
        // Most samples from five evenly spaced levels, so Paeth's distances tie often and its order decides.
        for (int i = 0; i < samples.Length; i++) samples[i] = (byte)(rng.Next(4) == 0 ? rng.Next(256) : 60 + 20 * rng.Next(5));
        byte[]? palette = null;
        if (colorType == 3)
        {
            palette = new byte[3 * 256];
            rng.NextBytes(palette);
        }
        // Every filter after every other, and runs of Paeth rows (decoded two at a time), odd and even.
        foreach (int[] filters in new[] { new[] { 0, 1, 2, 3, 4, 4, 3, 1, 2 }, [4, 4, 4, 4, 4, 2, 4, 4, 1] })
            CheckRgb(Fixtures.PngFiltered(width, height, colorType, samples, filters, palette), colorType, width, height, samples, palette);
    }

    [Theory]
    [MemberData(nameof(FilteredImages))]
    public void ReadRgb_Sampled_TakesTheChosenRowsAndColumns(int colorType, int width, int height)
    {
        var rng = new Random(colorType * 7 + width);
        var samples = new byte[width * height * Channels(colorType)];
        rng.NextBytes(samples);
        byte[]? palette = null;
        if (colorType == 3) { palette = new byte[3 * 256]; rng.NextBytes(palette); }
        var png = Fixtures.PngFiltered(width, height, colorType, samples, [4, 1, 2, 3, 0, 4, 4], palette);
        var header = Png.Inspect(png, "f.png", long.MaxValue);
        // rows and columns out of order, repeated (an upscale) and skipped (a downscale)
        int[] rows = [height - 1, 0, 0, height / 2, height - 1];
        int[] cols = [width - 1, 0, width / 2, width / 2, 0, width - 1, width / 3];
        var rgb = new byte[3 * rows.Length * cols.Length];
        Png.ReadRgb(png, "f.png", header, rgb, rows, cols);
        int plane = rows.Length * cols.Length;
        for (int i = 0; i < rows.Length; i++)
            for (int j = 0; j < cols.Length; j++)
                for (int k = 0; k < 3; k++)
                    Assert.Equal(ExpectedRgb(colorType, samples, palette, rows[i] * width + cols[j], k), rgb[k * plane + i * cols.Length + j]);
        var outside = Assert.Throws<ArgumentException>(() => Png.ReadRgb(png, "f.png", header, rgb, [0, height, 0, 0, 0], cols));
        Assert.Contains("f.png", outside.Message);
        Assert.Contains($"row {height}", outside.Message);
        Assert.Throws<ArgumentException>(() => Png.ReadRgb(png, "f.png", header, new byte[rgb.Length - 1], rows, cols));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(8)]
    [InlineData(16)]
    public void ReadIndices_Sampled_TakesTheChosenRowsAndColumns(int depth)
    {
        // gray samples written as scanlines by hand (filter 0), packed as the PNG spec packs sub-byte depths
        int w = 13, h = 5, max = (1 << depth) - 1;
        var values = new int[w * h];
        var rng = new Random(depth);
        for (int i = 0; i < values.Length; i++) values[i] = rng.Next(max + 1);
        int rowBytes = (w * depth + 7) / 8;
        var scanlines = new byte[h * (rowBytes + 1)];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int v = values[y * w + x], at = y * (rowBytes + 1) + 1;
                if (depth == 16) { scanlines[at + 2 * x] = (byte)(v >> 8); scanlines[at + 2 * x + 1] = (byte)v; }
                else scanlines[at + x * depth / 8] |= (byte)(v << (8 - depth - x * depth % 8));
            }
        var png = Fixtures.PngRaw(w, h, depth, 0, scanlines);
        var header = Png.Inspect(png, "m.png", long.MaxValue);
        int[] rows = [4, 4, 0, 2];
        int[] cols = [12, 0, 1, 1, 7];
        var ids = new long[rows.Length * cols.Length];
        Png.ReadIndices(png, "m.png", header, ids, rows, cols);
        for (int i = 0; i < rows.Length; i++)
            for (int j = 0; j < cols.Length; j++)
                Assert.Equal(values[rows[i] * w + cols[j]], ids[i * cols.Length + j]);
        var outside = Assert.Throws<ArgumentException>(() => Png.ReadIndices(png, "m.png", header, ids, rows, [12, 0, 1, 13, 7]));
        Assert.Contains("column 13", outside.Message);
    }

    static void CheckRgb(byte[] png, int colorType, int width, int height, byte[] samples, byte[]? palette)
    {
        var header = Png.Inspect(png, "f.png", long.MaxValue);
        Assert.True(Png.CanReadRgb(header));
        var rgb = Png.ReadRgb(png, "f.png", header);
        int plane = width * height;
        for (int p = 0; p < plane; p++)
            for (int k = 0; k < 3; k++)
            {
                byte expected = ExpectedRgb(colorType, samples, palette, p, k);
                Assert.True(expected == rgb[k * plane + p], $"pixel {p % width},{p / width} channel {k}: {rgb[k * plane + p]}, expected {expected}");
            }
        // ImageSharp, an independent decoder, agrees.
        using var img = Image.Load<Rgb24>(png);
        var hwc = new byte[3 * plane];
        img.CopyPixelDataTo(hwc);
        Assert.Equal(hwc, Enumerable.Range(0, plane).SelectMany(p => new[] { rgb[p], rgb[plane + p], rgb[2 * plane + p] }).ToArray());
    }

    [Fact]
    public void PaletteIndexPastThePalette_IsRefused()
    {
        // Four colours, and index 9 in the image: decoders differ (black, or an error); it is corruption.
        var samples = new byte[] { 0, 1, 2, 3, 9, 0 };
        var png = Fixtures.PngFiltered(3, 2, 3, samples, [0], palette: new byte[3 * 4]);
        var e = Assert.Throws<InvalidDataException>(() => Png.ReadRgb(png, "pal.png", Png.Inspect(png, "pal.png", long.MaxValue)));
        Assert.Contains("pal.png", e.Message);
        Assert.Contains("palette index 9", e.Message);
    }

    [Fact]
    public void ImageFiles_RefuseAPngWithRowsMissing()
    {
        // An image read for prediction or from a user's folder gets the same check as Penn-Fudan's.
        string dir = Directory.CreateTempSubdirectory("detseg-png").FullName;
        try
        {
            var rows = Enumerable.Range(0, 3).SelectMany(y => new[] { (byte)0 }.Concat(Enumerable.Range(0, 8 * 3).Select(i => (byte)(i * 7 + y)))).ToArray();
            string path = Path.Combine(dir, "short.png");
            File.WriteAllBytes(path, Fixtures.PngRaw(8, 6, 8, 2, rows));
            var e = Assert.Throws<InvalidDataException>(() => DetSeg.Data.Formats.ImageFiles.ReadRgb(path));
            Assert.Contains("short.png", e.Message);
            Assert.Contains("inflates to 75 of the 150 bytes", e.Message);
            // The interlaced and 16-bit images ImageSharp decodes are checked before it does.
            File.WriteAllBytes(path, Fixtures.PngRaw(8, 6, 16, 2, rows));
            e = Assert.Throws<InvalidDataException>(() => DetSeg.Data.Formats.ImageFiles.ReadRgb(path));
            Assert.Contains("inflates to 75 of the 294 bytes", e.Message);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [SkippableFact]
    public void RealData_EveryPennFudanPng_PassesVerify()
    {
        string? data = TestPaths.SharedData;
        Skip.If(data is null || !Directory.Exists(Path.Combine(data, "PennFudanPed")), "no real data");
        var files = Directory.GetFiles(Path.Combine(data!, "PennFudanPed"), "*.png", SearchOption.AllDirectories);
        Assert.Equal(340, files.Length);
        foreach (var f in files) Png.Verify(File.ReadAllBytes(f), f, PennFudan.DefaultMaxPixels);
    }

    [SkippableFact]
    public void RealData_EveryPennFudanImage_DecodesAsImageSharpDecodesIt()
    {
        string? data = TestPaths.SharedData;
        Skip.If(data is null || !Directory.Exists(Path.Combine(data, "PennFudanPed")), "no real data");
        var files = Directory.GetFiles(Path.Combine(data!, "PennFudanPed", "PNGImages"), "*.png");
        Assert.Equal(170, files.Length);
        foreach (var f in files)
        {
            var bytes = File.ReadAllBytes(f);
            var header = Png.Inspect(bytes, f, PennFudan.DefaultMaxPixels);
            var rgb = Png.ReadRgb(bytes, f, header);
            using var img = Image.Load<Rgb24>(bytes);
            var hwc = new byte[rgb.Length];
            img.CopyPixelDataTo(hwc);
            int plane = header.Width * header.Height;
            for (int p = 0; p < plane; p++)
                if (hwc[3 * p] != rgb[p] || hwc[3 * p + 1] != rgb[plane + p] || hwc[3 * p + 2] != rgb[2 * plane + p])
                    Assert.Fail($"{Path.GetFileName(f)}: pixel {p % header.Width},{p / header.Width} differs from ImageSharp's");
        }
    }
}

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

    [SkippableFact]
    public void RealData_EveryPennFudanPng_PassesVerify()
    {
        string? data = TestPaths.SharedData;
        Skip.If(data is null || !Directory.Exists(Path.Combine(data, "PennFudanPed")), "no real data");
        var files = Directory.GetFiles(Path.Combine(data!, "PennFudanPed"), "*.png", SearchOption.AllDirectories);
        Assert.Equal(340, files.Length);
        foreach (var f in files) Png.Verify(File.ReadAllBytes(f), f, PennFudan.DefaultMaxPixels);
    }
}

using DetSeg.Data;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Data;

public class PennFudanTests
{
    [Fact]
    public void Items_AreSortedByName_WithRgbImageAndStoredMaskIds()
    {
        string root = Fixtures.PennFudanFolder(3);
        var ds = new PennFudan(root, download: false);
        Assert.Equal(new[] { "Ped00000", "Ped00001", "Ped00002" }, ds.FileNames);
        using var item = ds[1];
        Assert.Equal("Ped00001", item.Name);
        Assert.Equal(new long[] { 3, 6, 9 }, item.Image.shape);
        Assert.Equal(ScalarType.Byte, item.Image.dtype);
        // fixture pixel (x=4, y=2) = (40, 20, 7)
        Assert.Equal(new byte[] { 40, 20, 7 }, item.Image[.., 2, 4].data<byte>().ToArray());
        Assert.Equal(new long[] { 6, 9 }, item.Mask.shape);
        Assert.Equal(ScalarType.Int64, item.Mask.dtype);
        Assert.Equal(Fixtures.MaskValues(9, 6, 2).Select(v => (long)v), item.Mask.data<long>().ToArray());
    }

    [Fact]
    public void PaletteMask_ReturnsStoredIndices_NotColours()
    {
        string root = Fixtures.PennFudanFolder(3);
        string maskFile = Path.Combine(root, "PedMasks", "Ped00002_mask.png");
        // ImageSharp alone turns the palette into colours (STACK-NOTES): ids would be lost.
        using (var l8 = Image.Load<L8>(maskFile))
            Assert.NotEqual(1, l8[1, 0].PackedValue);
        using var item = new PennFudan(root, download: false)[2];
        Assert.Equal(Fixtures.MaskValues(10, 6, 3).Select(v => (long)v), item.Mask.data<long>().ToArray());
        Assert.Equal(3L, item.Mask.max().item<long>());
    }

    [Fact]
    public void SizeMismatch_NamesFileAndBothSizes()
    {
        string root = Fixtures.PennFudanFolder(2);
        File.WriteAllBytes(Path.Combine(root, "PedMasks", "Ped00000_mask.png"), Fixtures.Png8(5, 6, new byte[30], 0));
        var e = Assert.Throws<InvalidDataException>(() => new PennFudan(root, download: false)[0]);
        Assert.Contains("Ped00000_mask.png", e.Message);
        Assert.Contains("8 x 6", e.Message);
        Assert.Contains("5 x 6", e.Message);
        Assert.Contains("Ped00000_mask.png", Assert.Throws<InvalidDataException>(() => new PennFudan(root, download: false).ReadMask(0)).Message);
    }

    [Fact]
    public void TruncatedOrCorruptPng_NamesTheFile()
    {
        string root = Fixtures.PennFudanFolder(2);
        string image = Path.Combine(root, "PNGImages", "Ped00001.png");
        var bytes = File.ReadAllBytes(image);
        File.WriteAllBytes(image, bytes[..(bytes.Length - 30)]);
        var e = Assert.Throws<InvalidDataException>(() => new PennFudan(root, download: false)[1]);
        Assert.Contains("Ped00001.png", e.Message);
        Assert.Contains("truncated", e.Message);

        string mask = Path.Combine(root, "PedMasks", "Ped00000_mask.png");
        var m = File.ReadAllBytes(mask);
        // Overwrite the zlib stream inside IDAT (after the 8-byte signature, 25-byte IHDR and 8-byte IDAT head).
        for (int i = 8 + 25 + 8 + 2; i < 8 + 25 + 8 + 12; i++) m[i] ^= 0x5A;
        File.WriteAllBytes(mask, m);
        var c = Assert.Throws<InvalidDataException>(() => new PennFudan(root, download: false)[0]);
        Assert.Contains("Ped00000_mask.png", c.Message);
    }

    [Fact]
    public void DecompressionBomb_IsRefusedBeforeDecoding()
    {
        string root = Fixtures.PennFudanFolder(1);
        var ds = new PennFudan(root, download: false, maxPixels: 40);
        var e = Assert.Throws<InvalidDataException>(() => ds[0]);
        Assert.Contains("Ped00000.png", e.Message);
        Assert.Contains("exceeds the limit of 40", e.Message);

        // A header claiming 100000 x 100000 pixels is refused with the default limit, without allocating.
        var bomb = Fixtures.Png8(1, 1, [0], 0);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bomb.AsSpan(16), 100000);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bomb.AsSpan(20), 100000);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bomb.AsSpan(29), Fixtures.Crc32(bomb.AsSpan(12, 17)));   // a real bomb has a valid CRC
        Assert.Contains("decompression bomb", Assert.Throws<InvalidDataException>(() => Png.Inspect(bomb, "bomb.png", PennFudan.DefaultMaxPixels)).Message);
    }

    [Fact]
    public void MissingFolderWithoutDownload_SaysWhereToPutIt()
    {
        string root = Path.Combine(TestPaths.NewTempDir(), "PennFudanPed");
        var e = Assert.Throws<DataUnavailableException>(() => new PennFudan(root, download: false));
        Assert.Contains(root, e.Message);
        Assert.Contains(PennFudan.Url, e.Message);
    }

    [Fact]
    public void NormalizeDenormalize_UseCourseStats_AndRoundTrip()
    {
        using var x = full(new long[] { 2, 3, 2, 2 }, 0.5f);
        using var n = PennFudan.Normalize(x);
        // hand computation: (0.5 - 0.4398) / 0.2635 = 0.228463
        Assert.Equal(0.228463, n[1, 0, 0, 0].item<float>(), 5);
        Assert.Equal((0.5 - 0.4062) / 0.2577, n[0, 2, 1, 1].item<float>(), 5);
        using var back = PennFudan.Denormalize(n);
        Assert.True(back.allclose(x, atol: 1e-6));
        Assert.Throws<ArgumentException>(() => PennFudan.Normalize(zeros(2, 4, 4)));
    }

    [SkippableFact]
    public void RealData_170Images_MasksMatchSizes_MaxIdsSumTo423()
    {
        Skip.If(TestPaths.SharedData is null, "../shared/data is not present");
        // Facts from the issue and ../shared/data/SOURCES.md (current release: 345 + 78 added objects).
        var ds = new PennFudan(Path.Combine(TestPaths.SharedData!, "PennFudanPed"), download: false);
        Assert.Equal(170, ds.Count);
        long sum = 0;
        for (int i = 0; i < ds.Count; i++)
        {
            using var mask = ds.ReadMask(i);   // throws if the image header's size differs from the mask's
            sum += mask.max().item<long>();
        }
        Assert.Equal(423, sum);
        using var first = ds[0];   // decode one full item too
        Assert.Equal(first.Image.shape[1..], first.Mask.shape);
        Assert.Equal("FudanPed00001", ds.FileNames[0]);
    }
}

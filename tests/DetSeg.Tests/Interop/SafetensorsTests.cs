using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using DetSeg.Interop;
using static TorchSharp.torch;

namespace DetSeg.Tests.Interop;

/// <summary>The safetensors writer and reader against the format's specification.</summary>
public class SafetensorsTests
{
    [Fact]
    public void Write_FollowsTheSpecification()
    {
        string path = Path.Combine(TestPaths.NewTempDir(), "t.safetensors");
        Safetensors.Write(path, new Dictionary<string, Tensor>
        {
            ["a"] = tensor(new float[] { 1, 2, 3, 4, 5, 6 }).view(2, 3),
            ["n"] = tensor(7L),                                   // 0-dim int64
        });
        byte[] f = File.ReadAllBytes(path);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(f);
        Assert.Equal(0, (8 + n) % 8); // header padded so the data start 8-byte aligned
        using var header = JsonDocument.Parse(Encoding.UTF8.GetString(f, 8, (int)n).TrimEnd(' '));
        var root = header.RootElement;
        Assert.Equal("pt", root.GetProperty("__metadata__").GetProperty("format").GetString());
        Assert.Equal("F32", root.GetProperty("a").GetProperty("dtype").GetString());
        Assert.Equal("[2,3]", root.GetProperty("a").GetProperty("shape").GetRawText());
        Assert.Equal("[0,24]", root.GetProperty("a").GetProperty("data_offsets").GetRawText());
        Assert.Equal("I64", root.GetProperty("n").GetProperty("dtype").GetString());
        Assert.Equal("[]", root.GetProperty("n").GetProperty("shape").GetRawText());
        Assert.Equal("[24,32]", root.GetProperty("n").GetProperty("data_offsets").GetRawText());
        int data = 8 + (int)n;
        Assert.Equal(3f, BitConverter.ToSingle(f, data + 8));  // little-endian float32, row-major
        Assert.Equal(7L, BitConverter.ToInt64(f, data + 24));
        Assert.Equal(data + 32, f.Length);
    }

    [Fact]
    public void RoundTrip_KeepsDtypesShapesValues_AndNonAsciiKeys()
    {
        string path = Path.Combine(TestPaths.NewTempDir(), "t.safetensors");
        var t = new Dictionary<string, Tensor>
        {
            ["größe.weight"] = arange(12, dtype: float64).view(3, 2, 2).transpose(0, 2), // non-contiguous view
            ["mask"] = tensor(new[] { true, false, true }),
            ["bytes"] = tensor(new byte[] { 0, 255 }),
            ["half"] = tensor(new float[] { 0.5f, -2f }).to(float16),
            ["empty"] = zeros(0, 4),
        };
        Safetensors.Write(path, t, new Dictionary<string, string> { ["note"] = "x" });
        var back = Safetensors.Read(path, out var meta);
        Assert.Equal("x", meta["note"]);
        foreach (var (k, v) in t)
        {
            Assert.Equal(v.dtype, back[k].dtype);
            Assert.Equal(v.shape, back[k].shape);
            Assert.True(v.to(float64).eq(back[k].to(float64)).all().item<bool>(), k);
        }
    }

    [Fact]
    public void Read_RejectsBrokenFiles_NamingFileAndEntry()
    {
        var dir = TestPaths.NewTempDir();
        string good = Path.Combine(dir, "good.safetensors");
        Safetensors.Write(good, new Dictionary<string, Tensor> { ["w"] = ones(4) });
        byte[] f = File.ReadAllBytes(good);

        string cut = Path.Combine(dir, "cut.safetensors");
        File.WriteAllBytes(cut, f[..^4]);
        var ex = Assert.Throws<InvalidDataException>(() => Safetensors.Read(cut));
        Assert.Contains("cut.safetensors", ex.Message);
        Assert.Contains("'w'", ex.Message);

        string tiny = Path.Combine(dir, "tiny.safetensors");
        File.WriteAllBytes(tiny, new byte[] { 1, 2, 3 });
        Assert.Contains("too short", Assert.Throws<InvalidDataException>(() => Safetensors.Read(tiny)).Message);

        string huge = Path.Combine(dir, "huge.safetensors");
        var bad = (byte[])f.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(bad, 1UL << 40);
        File.WriteAllBytes(huge, bad);
        Assert.Contains("header length", Assert.Throws<InvalidDataException>(() => Safetensors.Read(huge)).Message);
    }
}

using System.Buffers.Binary;
using System.Text;
using DetSeg.Runtime;

namespace DetSeg.Tests.Runtime;

public class ElfVersionPatchTests
{
    // Builds a minimal 64-bit little-endian ELF with a string table, a .gnu.version_r that needs
    // libstdc++.so.6 (GLIBCXX_3.4.30, GLIBCXX_3.4.32) and libc.so.6 (GLIBC_2.34), and a
    // .gnu.version_d that defines GLIBCXX_3.4.29 and GLIBCXX_3.4.30. Offsets follow the ELF spec.
    internal static byte[] BuildElf()
    {
        var strings = new List<string> { "libstdc++.so.6", "GLIBCXX_3.4.30", "GLIBCXX_3.4.32", "libc.so.6", "GLIBC_2.34", "GLIBCXX_3.4.29" };
        var str = new List<byte> { 0 };
        var index = new Dictionary<string, uint>();
        foreach (var s in strings) { index[s] = (uint)str.Count; str.AddRange(Encoding.ASCII.GetBytes(s)); str.Add(0); }

        const int strOff = 64;
        int verneedOff = Align(strOff + str.Count, 8);
        int verneedSize = 16 + 2 * 16 + 16 + 16;
        int verdefOff = Align(verneedOff + verneedSize, 8);
        int verdefSize = 2 * (20 + 8);
        int shOff = Align(verdefOff + verdefSize, 8);
        var b = new byte[shOff + 4 * 64];

        b[0] = 0x7f; b[1] = (byte)'E'; b[2] = (byte)'L'; b[3] = (byte)'F'; b[4] = 2; b[5] = 1; b[6] = 1;
        W16(b, 0x10, 3); W16(b, 0x12, 0x3e); W32(b, 0x14, 1);
        W64(b, 0x28, (ulong)shOff); W16(b, 0x34, 64); W16(b, 0x3A, 64); W16(b, 0x3C, 4);
        str.CopyTo(b, strOff);

        // Verneed libstdc++ (2 aux) -> Verneed libc (1 aux)
        int v = verneedOff;
        W16(b, v, 1); W16(b, v + 2, 2); W32(b, v + 4, index["libstdc++.so.6"]); W32(b, v + 8, 16); W32(b, v + 12, 48);
        Aux(b, v + 16, index["GLIBCXX_3.4.30"], 16); Aux(b, v + 32, index["GLIBCXX_3.4.32"], 0);
        v += 48;
        W16(b, v, 1); W16(b, v + 2, 1); W32(b, v + 4, index["libc.so.6"]); W32(b, v + 8, 16); W32(b, v + 12, 0);
        Aux(b, v + 16, index["GLIBC_2.34"], 0);

        // Verdef GLIBCXX_3.4.29 -> Verdef GLIBCXX_3.4.30
        int d = verdefOff;
        W16(b, d, 1); W16(b, d + 4, 2); W16(b, d + 6, 1); W32(b, d + 12, 20); W32(b, d + 16, 28);
        W32(b, d + 20, index["GLIBCXX_3.4.29"]);
        d += 28;
        W16(b, d, 1); W16(b, d + 4, 3); W16(b, d + 6, 1); W32(b, d + 12, 20); W32(b, d + 16, 0);
        W32(b, d + 20, index["GLIBCXX_3.4.30"]);

        Section(b, shOff + 64, 3, strOff, str.Count, 0, 0);
        Section(b, shOff + 128, 0x6ffffffe, verneedOff, verneedSize, 1, 2);
        Section(b, shOff + 192, 0x6ffffffd, verdefOff, verdefSize, 1, 2);
        return b;
    }

    static int Align(int x, int a) => (x + a - 1) / a * a;
    static void W16(byte[] b, int o, ushort x) => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(o), x);
    static void W32(byte[] b, int o, uint x) => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(o), x);
    static void W64(byte[] b, int o, ulong x) => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(o), x);
    static void Aux(byte[] b, int o, uint name, uint next) { W32(b, o, 0x1234); W16(b, o + 4, 0); W16(b, o + 6, 5); W32(b, o + 8, name); W32(b, o + 12, next); }
    static void Section(byte[] b, int o, uint type, int offset, int size, uint link, uint info)
    {
        W32(b, o + 4, type); W64(b, o + 0x18, (ulong)offset); W64(b, o + 0x20, (ulong)size); W32(b, o + 0x28, link); W32(b, o + 0x2C, info);
    }

    [Fact]
    public void ReadVersionNeeds_ListsEveryRequirementWithItsFile()
    {
        var needs = ElfVersionPatch.ReadVersionNeeds(BuildElf());
        Assert.Equal(
            new[] { ("libstdc++.so.6", "GLIBCXX_3.4.30"), ("libstdc++.so.6", "GLIBCXX_3.4.32"), ("libc.so.6", "GLIBC_2.34") },
            needs.Select(n => (n.File, n.Version)));
        Assert.All(needs, n => Assert.False(n.IsWeak));
    }

    [Fact]
    public void ReadVersionDefinitions_ListsDefinedVersions()
    {
        Assert.Equal(new[] { "GLIBCXX_3.4.29", "GLIBCXX_3.4.30" }, ElfVersionPatch.ReadVersionDefinitions(BuildElf()).Order());
    }

    [Fact]
    public void MarkWeak_ChangesOnlyTheNamedRequirement_AndKeepsTheSize()
    {
        byte[] original = BuildElf();
        byte[] patched = (byte[])original.Clone();

        var changed = ElfVersionPatch.MarkWeak(patched, "libstdc++.so.6", ["GLIBCXX_3.4.32", "GLIBC_2.34"]);

        Assert.Equal(new[] { "GLIBCXX_3.4.32" }, changed); // GLIBC_2.34 belongs to libc, not libstdc++
        Assert.Equal(original.Length, patched.Length);
        var diffs = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToList();
        Assert.Single(diffs);
        Assert.Equal(ElfVersionPatch.VerFlgWeak, patched[diffs[0]]);
        var needs = ElfVersionPatch.ReadVersionNeeds(patched);
        Assert.True(needs.Single(n => n.Version == "GLIBCXX_3.4.32").IsWeak);
        Assert.False(needs.Single(n => n.Version == "GLIBCXX_3.4.30").IsWeak);
        // A second pass finds nothing left to do.
        Assert.Empty(ElfVersionPatch.MarkWeak(patched, "libstdc++.so.6", ["GLIBCXX_3.4.32"]));
    }

    [Fact]
    public void Read_RejectsNonElfAndTruncatedFiles()
    {
        Assert.Throws<InvalidDataException>(() => ElfVersionPatch.ReadVersionNeeds(new byte[100]));
        byte[] truncated = BuildElf()[..200];
        var e = Assert.Throws<InvalidDataException>(() => ElfVersionPatch.ReadVersionNeeds(truncated));
        Assert.Contains("outside", e.Message);
    }

    [SkippableFact]
    public void RealLibTorchSharp_NeedsGlibcxx332_OfLibstdcxx()
    {
        string lib = Path.Combine(Path.GetDirectoryName(typeof(TorchSharp.torch).Assembly.Location)!, "libLibTorchSharp.so");
        Skip.IfNot(File.Exists(lib), "no linux-x64 libLibTorchSharp.so beside TorchSharp.dll");
        var needs = ElfVersionPatch.ReadVersionNeeds(File.ReadAllBytes(lib));
        Assert.Contains(needs, n => n.File == "libstdc++.so.6" && n.Version == "GLIBCXX_3.4.32");
    }
}

using System.Buffers.Binary;
using System.Text;

namespace DetSeg.Runtime;

/// <summary>
/// Reads and edits the symbol-version tables of a 64-bit little-endian ELF shared object.
/// </summary>
/// <remarks>
/// TorchSharp 0.107's <c>libLibTorchSharp.so</c> was linked with GCC 13 and asks for
/// <c>GLIBCXX_3.4.32</c>, which the libstdc++ of Debian 12 / Ubuntu 22.04 does not define; only a
/// link marker (<c>_ZSt21ios_base_library_initv</c>) needs it. Marking such a version requirement
/// weak (<c>VER_FLG_WEAK</c>) lets the dynamic loader accept the library; the file size and every
/// offset stay the same, so the edit is a two-byte change per entry.
/// </remarks>
public static class ElfVersionPatch
{
    /// <summary>Flag in <c>vna_flags</c> that makes a version requirement optional.</summary>
    public const ushort VerFlgWeak = 0x2;

    const uint ShtGnuVerdef = 0x6ffffffd;
    const uint ShtGnuVerneed = 0x6ffffffe;

    /// <summary>One <c>Vernaux</c> entry: a version that a needed library must define.</summary>
    /// <param name="File">The needed library's name, e.g. <c>libstdc++.so.6</c>.</param>
    /// <param name="Version">The version name, e.g. <c>GLIBCXX_3.4.32</c>.</param>
    /// <param name="Flags">The entry's <c>vna_flags</c>.</param>
    /// <param name="FlagsOffset">Byte offset of <c>vna_flags</c> in the file.</param>
    public sealed record VersionNeed(string File, string Version, ushort Flags, int FlagsOffset)
    {
        /// <summary>Whether the requirement is already weak.</summary>
        public bool IsWeak => (Flags & VerFlgWeak) != 0;
    }

    /// <summary>Lists the version requirements (<c>.gnu.version_r</c>) of an ELF image.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a 64-bit little-endian ELF or a table is out of bounds.</exception>
    public static IReadOnlyList<VersionNeed> ReadVersionNeeds(ReadOnlySpan<byte> elf)
    {
        var result = new List<VersionNeed>();
        foreach (var (offset, size, strtab, count) in Sections(elf, ShtGnuVerneed))
        {
            long entry = offset;
            for (int i = 0; i < count; i++)
            {
                Check(elf, entry, 16);
                ushort cnt = U16(elf, entry + 2);
                string file = CString(elf, strtab, U32(elf, entry + 4));
                long aux = entry + U32(elf, entry + 8);
                for (int j = 0; j < cnt; j++)
                {
                    Check(elf, aux, 16);
                    ushort flags = U16(elf, aux + 4);
                    string name = CString(elf, strtab, U32(elf, aux + 8));
                    result.Add(new VersionNeed(file, name, flags, checked((int)(aux + 4))));
                    uint nextAux = U32(elf, aux + 12);
                    if (nextAux == 0) break;
                    aux += nextAux;
                }
                uint next = U32(elf, entry + 12);
                if (next == 0) break;
                entry += next;
            }
            if (entry > offset + size) throw new InvalidDataException("ELF .gnu.version_r runs past its section.");
        }
        return result;
    }

    /// <summary>Lists the versions an ELF image defines (<c>.gnu.version_d</c>), e.g. a libstdc++'s GLIBCXX_*.</summary>
    public static IReadOnlySet<string> ReadVersionDefinitions(ReadOnlySpan<byte> elf)
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (offset, _, strtab, count) in Sections(elf, ShtGnuVerdef))
        {
            long entry = offset;
            for (int i = 0; i < count; i++)
            {
                Check(elf, entry, 20);
                ushort cnt = U16(elf, entry + 6);
                long aux = entry + U32(elf, entry + 12);
                if (cnt > 0)
                {
                    Check(elf, aux, 8);
                    result.Add(CString(elf, strtab, U32(elf, aux)));
                }
                uint next = U32(elf, entry + 16);
                if (next == 0) break;
                entry += next;
            }
        }
        return result;
    }

    /// <summary>
    /// Marks weak every requirement on <paramref name="file"/> whose version is in <paramref name="versions"/>.
    /// Edits <paramref name="elf"/> in place and returns the versions it changed.
    /// </summary>
    public static IReadOnlyList<string> MarkWeak(Span<byte> elf, string file, IEnumerable<string> versions)
    {
        var wanted = new HashSet<string>(versions, StringComparer.Ordinal);
        var changed = new List<string>();
        foreach (var need in ReadVersionNeeds(elf))
        {
            if (need.File != file || !wanted.Contains(need.Version) || need.IsWeak) continue;
            BinaryPrimitives.WriteUInt16LittleEndian(elf[need.FlagsOffset..], (ushort)(need.Flags | VerFlgWeak));
            changed.Add(need.Version);
        }
        return changed;
    }

    // Yields (offset, size, string-table offset, entry count) of every section of the given type.
    static List<(long Offset, long Size, long StrTab, int Count)> Sections(ReadOnlySpan<byte> elf, uint type)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new InvalidDataException("Not an ELF file (bad magic).");
        if (elf[4] != 2 || elf[5] != 1)
            throw new InvalidDataException($"Only 64-bit little-endian ELF is supported (class {elf[4]}, data {elf[5]}).");
        long shoff = (long)U64(elf, 0x28);
        int shentsize = U16(elf, 0x3A), shnum = U16(elf, 0x3C);
        if (shentsize < 64) throw new InvalidDataException($"ELF section header size {shentsize} < 64.");
        Check(elf, shoff, (long)shentsize * shnum);
        var found = new List<(long, long, long, int)>();
        for (int i = 0; i < shnum; i++)
        {
            long sh = shoff + (long)i * shentsize;
            if (U32(elf, sh + 4) != type) continue;
            long offset = (long)U64(elf, sh + 0x18), size = (long)U64(elf, sh + 0x20);
            uint link = U32(elf, sh + 0x28), info = U32(elf, sh + 0x2C);
            if (link >= shnum) throw new InvalidDataException($"ELF section {i} links to missing section {link}.");
            long strtab = (long)U64(elf, shoff + (long)link * shentsize + 0x18);
            Check(elf, offset, size);
            found.Add((offset, size, strtab, checked((int)info)));
        }
        return found;
    }

    static void Check(ReadOnlySpan<byte> elf, long offset, long length)
    {
        if (offset < 0 || length < 0 || offset + length > elf.Length)
            throw new InvalidDataException($"ELF table at offset {offset} (+{length}) lies outside the {elf.Length}-byte file.");
    }

    static ushort U16(ReadOnlySpan<byte> b, long o) { Check(b, o, 2); return BinaryPrimitives.ReadUInt16LittleEndian(b[(int)o..]); }
    static uint U32(ReadOnlySpan<byte> b, long o) { Check(b, o, 4); return BinaryPrimitives.ReadUInt32LittleEndian(b[(int)o..]); }
    static ulong U64(ReadOnlySpan<byte> b, long o) { Check(b, o, 8); return BinaryPrimitives.ReadUInt64LittleEndian(b[(int)o..]); }

    static string CString(ReadOnlySpan<byte> elf, long strtab, uint index)
    {
        long start = strtab + index;
        Check(elf, start, 1);
        int end = elf[(int)start..].IndexOf((byte)0);
        if (end < 0) throw new InvalidDataException($"Unterminated ELF string at offset {start}.");
        return Encoding.ASCII.GetString(elf.Slice((int)start, end));
    }
}

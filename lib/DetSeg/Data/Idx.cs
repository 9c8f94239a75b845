using System.Buffers.Binary;
using System.IO.Compression;

namespace DetSeg.Data;

/// <summary>Reader of the IDX files MNIST ships in (optionally gzipped): a 4-byte magic
/// <c>0x00 0x00 type ndims</c>, big-endian int32 sizes, then the raw unsigned bytes.</summary>
public static class Idx
{
    /// <summary>The magic of MNIST image files (ubyte, 3 dims).</summary>
    public const int ImagesMagic = 2051;
    /// <summary>The magic of MNIST label files (ubyte, 1 dim).</summary>
    public const int LabelsMagic = 2049;

    /// <summary>Reads an IDX file of unsigned bytes; gzip is detected by its magic bytes.</summary>
    /// <param name="path">The file.</param>
    /// <param name="expectedMagic">The required magic (e.g. <see cref="ImagesMagic"/>), or null for any ubyte file.</param>
    /// <returns>The sizes per dimension and the data (row-major).</returns>
    /// <exception cref="InvalidDataException">Bad magic, a non-ubyte type, or a data length that does not match the header; the message names the file.</exception>
    public static (int[] Shape, byte[] Data) Read(string path, int? expectedMagic = null)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
            if (bytes.Length >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b)
            {
                using var gz = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
                using var raw = new MemoryStream();
                gz.CopyTo(raw);
                bytes = raw.ToArray();
            }
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: not a valid gzip stream ({e.Message}); delete it and download it again.", e);
        }
        if (bytes.Length < 4)
            throw new InvalidDataException($"{path}: {bytes.Length} bytes is too short for an IDX header.");
        int magic = BinaryPrimitives.ReadInt32BigEndian(bytes);
        if (bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 || bytes[3] == 0)
            throw new InvalidDataException($"{path}: bad IDX magic 0x{magic:x8} (expected 0x0000080N for unsigned bytes).");
        if (expectedMagic is int m && magic != m)
            throw new InvalidDataException($"{path}: IDX magic {magic}, expected {m} ({(m == ImagesMagic ? "images" : m == LabelsMagic ? "labels" : "?")}).");
        int ndims = bytes[3];
        int header = 4 + 4 * ndims;
        if (bytes.Length < header)
            throw new InvalidDataException($"{path}: truncated header ({bytes.Length} bytes, {ndims} dims need {header}).");
        var shape = new int[ndims];
        long count = 1;
        for (int d = 0; d < ndims; d++)
        {
            shape[d] = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(4 + 4 * d));
            if (shape[d] < 0) throw new InvalidDataException($"{path}: negative size {shape[d]} in dim {d}.");
            count *= shape[d];
        }
        if (bytes.Length - header != count)
            throw new InvalidDataException($"{path}: header says [{string.Join(" x ", shape)}] = {count} bytes of data but the file holds {bytes.Length - header}.");
        return (shape, bytes[header..]);
    }
}

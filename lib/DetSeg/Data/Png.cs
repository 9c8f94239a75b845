using System.Buffers.Binary;
using System.IO.Compression;

namespace DetSeg.Data;

/// <summary>The PNG header fields DetSeg checks before decoding anything.</summary>
/// <param name="Width">Pixels per row.</param>
/// <param name="Height">Rows.</param>
/// <param name="BitDepth">Bits per sample (1, 2, 4, 8, 16).</param>
/// <param name="ColorType">0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA.</param>
/// <param name="Interlaced">Adam7 interlacing.</param>
public readonly record struct PngHeader(int Width, int Height, int BitDepth, int ColorType, bool Interlaced);

/// <summary>
/// Small PNG helpers: a structural check (signature, chunk bounds, IHDR, IEND) that runs before any
/// decoding, so truncated files and decompression bombs are refused with the file's name; and a decoder
/// of the STORED values of gray and palette PNGs, because ImageSharp turns palette indices into colours
/// and instance-mask ids would be lost.
/// </summary>
public static class Png
{
    static readonly byte[] Signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Checks the chunk structure of <paramref name="bytes"/> and returns its header.</summary>
    /// <param name="bytes">The whole file.</param>
    /// <param name="path">The file name for messages.</param>
    /// <param name="maxPixels">Refuse images with more pixels than this (a decompression bomb guard).</param>
    /// <exception cref="InvalidDataException">Not a PNG, a truncated or malformed chunk, no IEND, or too many pixels.</exception>
    public static PngHeader Inspect(ReadOnlySpan<byte> bytes, string path, long maxPixels)
    {
        if (bytes.Length < 8 + 25 || !bytes[..8].SequenceEqual(Signature))
            throw new InvalidDataException($"{path}: not a PNG file (bad signature or shorter than a header).");
        int pos = 8;
        PngHeader? header = null;
        bool end = false;
        while (pos + 8 <= bytes.Length)
        {
            long length = BinaryPrimitives.ReadUInt32BigEndian(bytes[pos..]);
            var type = bytes.Slice(pos + 4, 4);
            if (pos + 12 + length > bytes.Length)
                throw new InvalidDataException($"{path}: truncated PNG (chunk '{System.Text.Encoding.ASCII.GetString(type)}' at byte {pos} needs {length} bytes, the file ends first).");
            var data = bytes.Slice(pos + 8, (int)length);
            if (header is null)
            {
                if (!type.SequenceEqual("IHDR"u8) || length != 13)
                    throw new InvalidDataException($"{path}: malformed PNG (first chunk is not a 13-byte IHDR).");
                int w = BinaryPrimitives.ReadInt32BigEndian(data), h = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                if (w <= 0 || h <= 0) throw new InvalidDataException($"{path}: invalid PNG size {w} x {h}.");
                if ((long)w * h > maxPixels)
                    throw new InvalidDataException($"{path}: {w} x {h} = {(long)w * h} pixels exceeds the limit of {maxPixels} (a possible decompression bomb); raise MaxPixels if the image is trusted.");
                header = new PngHeader(w, h, data[8], data[9], data[12] == 1);
            }
            if (type.SequenceEqual("IEND"u8)) { end = true; break; }
            pos += 12 + (int)length;
        }
        if (!end) throw new InvalidDataException($"{path}: truncated PNG (no IEND chunk).");
        return header!.Value;
    }

    /// <summary>Decodes the stored sample values of a non-interlaced gray (color type 0) or palette (3) PNG:
    /// gray levels or palette indices, <c>Height x Width</c> row-major.</summary>
    /// <exception cref="InvalidDataException">Another colour type, interlacing, or corrupt image data; the message names the file.</exception>
    public static int[] ReadIndices(ReadOnlySpan<byte> bytes, string path, long maxPixels, out PngHeader header)
    {
        header = Inspect(bytes, path, maxPixels);
        if (header.ColorType is not (0 or 3))
            throw new InvalidDataException($"{path}: stored values can be read from gray or palette PNGs only (color type {header.ColorType}).");
        if (header.Interlaced)
            throw new InvalidDataException($"{path}: interlaced gray/palette PNGs are not supported; save the mask without interlacing.");
        int depth = header.BitDepth;
        if (depth is not (1 or 2 or 4 or 8 or 16) || (header.ColorType == 3 && depth == 16))
            throw new InvalidDataException($"{path}: invalid bit depth {depth} for color type {header.ColorType}.");

        using var idat = new MemoryStream();
        int pos = 8;
        while (true)
        {
            int length = (int)BinaryPrimitives.ReadUInt32BigEndian(bytes[pos..]);
            var type = bytes.Slice(pos + 4, 4);
            if (type.SequenceEqual("IDAT"u8)) idat.Write(bytes.Slice(pos + 8, length));
            if (type.SequenceEqual("IEND"u8)) break;
            pos += 12 + length;
        }
        int w = header.Width, h = header.Height;
        int rowBytes = (w * depth + 7) / 8;
        int bpp = Math.Max(1, depth / 8);
        var raw = new byte[(long)h * (rowBytes + 1)];
        try
        {
            idat.Position = 0;
            using var z = new ZLibStream(idat, CompressionMode.Decompress);
            int read = 0, n;
            while (read < raw.Length && (n = z.Read(raw, read, raw.Length - read)) > 0) read += n;
            if (read != raw.Length)
                throw new InvalidDataException($"{path}: image data ends after {read} of {raw.Length} bytes.");
        }
        catch (InvalidDataException e) when (!e.Message.StartsWith(path, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"{path}: corrupt PNG image data ({e.Message}).", e);
        }

        var values = new int[(long)w * h];
        var prev = new byte[rowBytes];
        var row = new byte[rowBytes];
        for (int y = 0; y < h; y++)
        {
            int filter = raw[y * (rowBytes + 1)];
            Array.Copy(raw, y * (rowBytes + 1) + 1, row, 0, rowBytes);
            Unfilter(filter, row, prev, bpp, path, y);
            for (int x = 0; x < w; x++)
            {
                values[y * w + x] = depth switch
                {
                    8 => row[x],
                    16 => (row[2 * x] << 8) | row[2 * x + 1],
                    _ => (row[x * depth / 8] >> (8 - depth - x * depth % 8)) & ((1 << depth) - 1),
                };
            }
            (prev, row) = (row, prev);
        }
        return values;
    }

    static void Unfilter(int filter, byte[] row, byte[] prev, int bpp, string path, int y)
    {
        switch (filter)
        {
            case 0: break;
            case 1: for (int i = bpp; i < row.Length; i++) row[i] += row[i - bpp]; break;
            case 2: for (int i = 0; i < row.Length; i++) row[i] += prev[i]; break;
            case 3:
                for (int i = 0; i < row.Length; i++)
                    row[i] += (byte)(((i >= bpp ? row[i - bpp] : 0) + prev[i]) >> 1);
                break;
            case 4:
                for (int i = 0; i < row.Length; i++)
                {
                    int a = i >= bpp ? row[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
                    int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
                    row[i] += (byte)(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
                }
                break;
            default: throw new InvalidDataException($"{path}: corrupt PNG (unknown filter {filter} on row {y}).");
        }
    }
}

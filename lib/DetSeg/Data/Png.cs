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
/// Small PNG helpers: a structural check (signature, chunk bounds and CRCs, IHDR, IEND) that runs before any
/// decoding, so truncated or bit-flipped files and decompression bombs are refused with the file's name; a full
/// check of the image data (the zlib stream inflated to its end, where zlib checks its Adler-32, and the exact
/// inflated length),
/// because decoders fill in missing rows without a word; and a decoder of the STORED values of gray, gray+alpha
/// and palette PNGs, because ImageSharp turns palette indices into colours and scales 16-bit samples to 8 bits,
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
            uint stored = BinaryPrimitives.ReadUInt32BigEndian(bytes[(pos + 8 + (int)length)..]);
            uint actual = Crc32(bytes.Slice(pos + 4, 4 + (int)length));
            if (stored != actual)
                throw new InvalidDataException($"{path}: corrupt PNG (CRC mismatch in chunk '{System.Text.Encoding.ASCII.GetString(type)}' at byte {pos}: stored {stored:x8}, computed {actual:x8}).");
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

    /// <summary>
    /// Checks <paramref name="bytes"/> completely without decoding pixels: the chunk structure and CRCs
    /// (<see cref="Inspect"/>), then the image data: the concatenated IDAT zlib stream inflated to its end, its
    /// Adler-32 checksum, and an inflated length exactly equal to what the header's size, colour type, bit depth
    /// and interlacing require.
    /// </summary>
    /// <returns>The header.</returns>
    /// <exception cref="InvalidDataException">Any of those checks fails; the message names the file.</exception>
    public static PngHeader Verify(ReadOnlySpan<byte> bytes, string path, long maxPixels)
    {
        var header = Inspect(bytes, path, maxPixels);
        Inflate(bytes, path, header);
        return header;
    }

    /// <summary>The image-data half of <see cref="Verify"/>, for a file whose header <see cref="Inspect"/> already gave.</summary>
    /// <exception cref="InvalidDataException">Truncated, overlong or corrupt image data; the message names the file.</exception>
    public static void CheckImageData(ReadOnlySpan<byte> bytes, string path, PngHeader header) => Inflate(bytes, path, header);

    /// <summary>Decodes the stored sample values of a non-interlaced gray (color type 0), gray+alpha (4, the alpha is
    /// ignored) or palette (3) PNG: gray levels (8 or 16 bits, unscaled) or palette indices, <c>Height x Width</c> row-major.</summary>
    /// <exception cref="InvalidDataException">Another colour type, interlacing, or corrupt image data; the message names the file.</exception>
    public static int[] ReadIndices(ReadOnlySpan<byte> bytes, string path, long maxPixels, out PngHeader header)
    {
        header = Inspect(bytes, path, maxPixels);
        if (header.ColorType is not (0 or 3 or 4))
            throw new InvalidDataException($"{path}: stored values can be read from gray, gray+alpha or palette PNGs only (color type {header.ColorType}).");
        if (header.Interlaced)
            throw new InvalidDataException($"{path}: interlaced gray/palette PNGs are not supported; save the mask without interlacing.");
        int depth = header.BitDepth;
        int channels = header.ColorType == 4 ? 2 : 1;
        var raw = Inflate(bytes, path, header);
        int w = header.Width, h = header.Height;
        int rowBytes = (int)RowBytes(w, channels * depth);
        int bpp = Math.Max(1, channels * depth / 8);

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
                // The gray sample is the first of each pixel's samples (gray+alpha: gray then alpha).
                values[y * w + x] = depth switch
                {
                    8 => row[x * channels],
                    16 => (row[2 * channels * x] << 8) | row[2 * channels * x + 1],
                    _ => (row[x * depth / 8] >> (8 - depth - x * depth % 8)) & ((1 << depth) - 1),
                };
            }
            (prev, row) = (row, prev);
        }
        return values;
    }

    /// <summary>Samples per pixel of a colour type.</summary>
    static int Channels(int colorType, string path) => colorType switch
    {
        0 or 3 => 1,
        4 => 2,
        2 => 3,
        6 => 4,
        _ => throw new InvalidDataException($"{path}: invalid PNG color type {colorType}."),
    };

    static long RowBytes(long width, int bitsPerPixel) => (width * bitsPerPixel + 7) / 8;

    /// <summary>The exact length of the inflated image data: every (pass's) row is one filter byte plus its samples.</summary>
    static long RawLength(PngHeader header, string path)
    {
        int depth = header.BitDepth;
        bool valid = header.ColorType switch
        {
            0 => depth is 1 or 2 or 4 or 8 or 16,
            3 => depth is 1 or 2 or 4 or 8,
            _ => depth is 8 or 16,
        };
        if (!valid) throw new InvalidDataException($"{path}: invalid bit depth {depth} for color type {header.ColorType}.");
        int bits = Channels(header.ColorType, path) * depth;
        long w = header.Width, h = header.Height;
        if (!header.Interlaced) return h * (1 + RowBytes(w, bits));
        long total = 0;
        // Adam7: (x start, y start, x step, y step) of the seven passes; an empty pass has no rows at all.
        foreach (var (x0, y0, dx, dy) in new[] { (0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2) })
        {
            long pw = (w - x0 + dx - 1) / dx, ph = (h - y0 + dy - 1) / dy;
            if (pw > 0 && ph > 0) total += ph * (1 + RowBytes(pw, bits));
        }
        return total;
    }

    /// <summary>Inflates the IDAT stream to its end and checks it (length, Adler-32); returns the filtered scanlines.</summary>
    static byte[] Inflate(ReadOnlySpan<byte> bytes, string path, PngHeader header)
    {
        long expected = RawLength(header, path);
        if (expected > Array.MaxLength)
            throw new InvalidDataException($"{path}: {header.Width} x {header.Height} image data ({expected} bytes) is too large to decode.");
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
        if (idat.Length < 2 + 4)
            throw new InvalidDataException($"{path}: corrupt PNG (no image data: {idat.Length} IDAT bytes).");
        var raw = new byte[expected];
        int read = 0;
        bool more;
        idat.Position = 0;
        using (var z = new ZLibStream(idat, CompressionMode.Decompress, leaveOpen: true))
        {
            try
            {
                int n;
                while (read < raw.Length && (n = z.Read(raw, read, raw.Length - read)) > 0) read += n;
                // Read on to the end of the stream: zlib checks the Adler-32 of the inflated data only there, and
                // data past the image is corruption too.
                more = read == raw.Length && z.Read(stackalloc byte[1]) > 0;
            }
            catch (InvalidDataException e)
            {
                // zlib reports a wrong Adler-32 as "unsupported compression method": say what it can mean.
                throw new InvalidDataException($"{path}: corrupt PNG image data: the zlib stream fails its Adler-32 checksum or is malformed, after {read} of {raw.Length} bytes ({e.Message}).", e);
            }
        }
        if (read != raw.Length)
            throw new InvalidDataException($"{path}: truncated PNG image data: it inflates to {read} of the {raw.Length} bytes a {header.Width} x {header.Height} image needs.");
        if (more)
            throw new InvalidDataException($"{path}: corrupt PNG image data: it inflates to more than the {raw.Length} bytes a {header.Width} x {header.Height} image needs.");
        return raw;
    }

    static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
    {
        uint c = (uint)n;
        for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    /// <summary>The CRC-32 of PNG chunks (ISO 3309, as in zlib's <c>crc32</c>).</summary>
    internal static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte b in data) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
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

using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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
    static ReadOnlySpan<byte> Signature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>True when <paramref name="bytes"/> start with the PNG signature (whatever follows).</summary>
    public static bool IsPng(ReadOnlySpan<byte> bytes) => bytes.StartsWith(Signature);

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
        CheckImageData(bytes, path, header);
        return header;
    }

    /// <summary>The image-data half of <see cref="Verify"/>, for a file whose header <see cref="Inspect"/> already gave.</summary>
    /// <exception cref="InvalidDataException">Truncated, overlong or corrupt image data; the message names the file.</exception>
    public static void CheckImageData(ReadOnlySpan<byte> bytes, string path, PngHeader header) =>
        ArrayPool<byte>.Shared.Return(Inflate(bytes, path, header));

    /// <summary>Decodes the stored sample values of a non-interlaced gray (color type 0), gray+alpha (4, the alpha is
    /// ignored) or palette (3) PNG: gray levels (8 or 16 bits, unscaled) or palette indices, <c>Height x Width</c> row-major.</summary>
    /// <exception cref="InvalidDataException">Another colour type, interlacing, or corrupt image data; the message names the file.</exception>
    public static long[] ReadIndices(ReadOnlySpan<byte> bytes, string path, long maxPixels, out PngHeader header)
    {
        header = Inspect(bytes, path, maxPixels);
        var values = new long[(long)header.Width * header.Height];
        ReadIndices(bytes, path, header, values);
        return values;
    }

    /// <summary><see cref="ReadIndices(ReadOnlySpan{byte}, string, long, out PngHeader)"/> into
    /// <paramref name="destination"/> (<c>Height x Width</c> values), for a file whose header <see cref="Inspect"/> gave.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is not <c>Height x Width</c> long.</exception>
    public static void ReadIndices(ReadOnlySpan<byte> bytes, string path, PngHeader header, Span<long> destination) =>
        ReadIndices(bytes, path, header, destination, Identity(header.Height), Identity(header.Width));

    /// <summary><see cref="ReadIndices(ReadOnlySpan{byte}, string, PngHeader, Span{long})"/> resized by sampling (a
    /// nearest resize): output row i is stored row <paramref name="rows"/>[i], output column j stored column
    /// <paramref name="cols"/>[j]; <paramref name="destination"/> holds <c>rows x cols</c> values. The whole image data
    /// is still inflated and checked.</summary>
    /// <exception cref="ArgumentException">A row or column outside the image, or a destination of another size.</exception>
    public static void ReadIndices(ReadOnlySpan<byte> bytes, string path, PngHeader header, Span<long> destination, ReadOnlySpan<int> rows, ReadOnlySpan<int> cols)
    {
        if (header.ColorType is not (0 or 3 or 4))
            throw new InvalidDataException($"{path}: stored values can be read from gray, gray+alpha or palette PNGs only (color type {header.ColorType}).");
        if (header.Interlaced)
            throw new InvalidDataException($"{path}: interlaced gray/palette PNGs are not supported; save the mask without interlacing.");
        int depth = header.BitDepth;
        int channels = header.ColorType == 4 ? 2 : 1;
        int w = header.Width, h = header.Height, outW = cols.Length;
        CheckSampling(path, header, rows, cols);
        if (destination.Length != (long)rows.Length * outW)
            throw new ArgumentException($"{path}: {outW} x {rows.Length} ids need {(long)rows.Length * outW} values, the destination holds {destination.Length}.", nameof(destination));
        var raw = Unfiltered(bytes, path, header, channels * depth);
        try
        {
            int stride = (int)RowBytes(w, channels * depth) + 1;
            for (int i = 0; i < rows.Length; i++)
            {
                var row = raw.AsSpan(rows[i] * stride + 1, stride - 1);
                var line = destination.Slice(i * outW, outW);
                // The gray sample is the first of each pixel's samples (gray+alpha: gray then alpha).
                if (depth == 8)
                    for (int j = 0; j < outW; j++) line[j] = row[cols[j] * channels];
                else if (depth == 16)
                    for (int j = 0; j < outW; j++) line[j] = (row[2 * channels * cols[j]] << 8) | row[2 * channels * cols[j] + 1];
                else
                    for (int j = 0; j < outW; j++)
                    {
                        int x = cols[j];
                        line[j] = (row[x * depth / 8] >> (8 - depth - x * depth % 8)) & ((1 << depth) - 1);
                    }
            }
        }
        finally { ArrayPool<byte>.Shared.Return(raw); }
    }

    /// <summary>0, 1, …, n - 1: the rows or columns of an image read at full size.</summary>
    static int[] Identity(int n)
    {
        var all = new int[n];
        for (int i = 0; i < n; i++) all[i] = i;
        return all;
    }

    static void CheckSampling(string path, PngHeader header, ReadOnlySpan<int> rows, ReadOnlySpan<int> cols)
    {
        foreach (int y in rows)
            if ((uint)y >= (uint)header.Height)
                throw new ArgumentException($"{path}: row {y} is outside the {header.Width} x {header.Height} image.", nameof(rows));
        foreach (int x in cols)
            if ((uint)x >= (uint)header.Width)
                throw new ArgumentException($"{path}: column {x} is outside the {header.Width} x {header.Height} image.", nameof(cols));
    }

    /// <summary>True when <see cref="ReadRgb(ReadOnlySpan{byte}, string, PngHeader)"/> decodes images with this header: 8-bit samples of any colour type,
    /// not interlaced (every Penn-Fudan image, and what most encoders write).</summary>
    public static bool CanReadRgb(PngHeader header) =>
        header.BitDepth == 8 && !header.Interlaced && header.ColorType is 0 or 2 or 3 or 4 or 6;

    /// <summary>Decodes an image <see cref="CanReadRgb"/> accepts into planar RGB, <c>[3 x H x W]</c> row-major, as PIL's
    /// <c>convert("RGB")</c> gives it: gray repeated in the three channels, palette indices looked up, alpha dropped.
    /// The image data gets <see cref="Verify"/>'s checks on the way (inflated to its end, Adler-32, exact length).</summary>
    /// <param name="bytes">The whole file.</param>
    /// <param name="path">The file name for messages.</param>
    /// <param name="header">The header <see cref="Inspect"/> returned for <paramref name="bytes"/>.</param>
    /// <exception cref="InvalidDataException">A header <see cref="CanReadRgb"/> refuses, corrupt image data, or a palette
    /// index past the palette; the message names the file.</exception>
    public static byte[] ReadRgb(ReadOnlySpan<byte> bytes, string path, PngHeader header)
    {
        if (3L * header.Width * header.Height > Array.MaxLength)
            throw new InvalidDataException($"{path}: {header.Width} x {header.Height} RGB is too large to decode into one array.");
        var rgb = new byte[3L * header.Width * header.Height];
        ReadRgb(bytes, path, header, rgb);
        return rgb;
    }

    /// <summary><see cref="ReadRgb(ReadOnlySpan{byte}, string, PngHeader)"/> into <paramref name="destination"/>
    /// (<c>3 x Height x Width</c> bytes), such as a tensor's memory.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is not <c>3 x Height x Width</c> long.</exception>
    public static void ReadRgb(ReadOnlySpan<byte> bytes, string path, PngHeader header, Span<byte> destination) =>
        ReadRgb(bytes, path, header, destination, default, default, sampled: false);

    /// <summary><see cref="ReadRgb(ReadOnlySpan{byte}, string, PngHeader, Span{byte})"/> resized by sampling (a nearest
    /// resize): output row i is source row <paramref name="rows"/>[i], output column j source column
    /// <paramref name="cols"/>[j]; <paramref name="destination"/> holds <c>3 x rows x cols</c> bytes. The whole image
    /// data is still inflated and checked.</summary>
    /// <exception cref="ArgumentException">A row or column outside the image, or a destination of another size.</exception>
    public static void ReadRgb(ReadOnlySpan<byte> bytes, string path, PngHeader header, Span<byte> destination, ReadOnlySpan<int> rows, ReadOnlySpan<int> cols) =>
        ReadRgb(bytes, path, header, destination, rows, cols, sampled: true);

    static void ReadRgb(ReadOnlySpan<byte> bytes, string path, PngHeader header, Span<byte> destination, ReadOnlySpan<int> rows, ReadOnlySpan<int> cols, bool sampled)
    {
        if (!CanReadRgb(header))
            throw new InvalidDataException($"{path}: ReadRgb decodes 8-bit non-interlaced PNGs (this one: {header.BitDepth}-bit, color type {header.ColorType}{(header.Interlaced ? ", interlaced" : "")}).");
        int w = header.Width, h = header.Height;
        if (sampled) CheckSampling(path, header, rows, cols);
        int outW = sampled ? cols.Length : w, outH = sampled ? rows.Length : h;
        int plane = outW * outH;
        if (destination.Length != 3L * outW * outH)
            throw new ArgumentException($"{path}: {outW} x {outH} RGB needs {3L * outW * outH} bytes, the destination holds {destination.Length}.", nameof(destination));
        int channels = Channels(header.ColorType, path);
        var palette = header.ColorType == 3 ? Palette(bytes, path) : default;
        int stride = w * channels + 1;
        var raw = Unfiltered(bytes, path, header, 8 * channels);
        try
        {
            for (int i = 0; i < outH; i++)
            {
                int y = sampled ? rows[i] : i;
                var row = raw.AsSpan(y * stride + 1, stride - 1);
                var r = destination.Slice(i * outW, outW);
                var g = destination.Slice(plane + i * outW, outW);
                var b = destination.Slice(2 * plane + i * outW, outW);
                if (sampled) { Gather(row, header.ColorType, channels, palette, cols, r, g, b, path, y); continue; }
                switch (header.ColorType)
                {
                    case 2: Deinterleave(row, 3, r, g, b); break;
                    case 6: Deinterleave(row, 4, r, g, b); break;
                    case 0:
                        row.CopyTo(r); row.CopyTo(g); row.CopyTo(b);
                        break;
                    case 4:
                        for (int x = 0; x < w; x++) r[x] = g[x] = b[x] = row[2 * x];
                        break;
                    case 3:
                        for (int x = 0; x < w; x++) PaletteColour(palette, row[x], path, y, x, out r[x], out g[x], out b[x]);
                        break;
                }
            }
        }
        finally { ArrayPool<byte>.Shared.Return(raw); }
    }

    /// <summary>The pixels of one unfiltered row at columns <paramref name="cols"/>, as RGB planes.</summary>
    static void Gather(ReadOnlySpan<byte> row, int colorType, int channels, ReadOnlySpan<byte> palette, ReadOnlySpan<int> cols,
                       Span<byte> r, Span<byte> g, Span<byte> b, string path, int y)
    {
        switch (colorType)
        {
            case 2 or 6:
                for (int j = 0; j < cols.Length; j++)
                {
                    int at = cols[j] * channels;
                    r[j] = row[at]; g[j] = row[at + 1]; b[j] = row[at + 2];
                }
                break;
            case 0 or 4:
                for (int j = 0; j < cols.Length; j++) r[j] = g[j] = b[j] = row[cols[j] * channels];
                break;
            default:
                for (int j = 0; j < cols.Length; j++) PaletteColour(palette, row[cols[j]], path, y, cols[j], out r[j], out g[j], out b[j]);
                break;
        }
    }

    static void PaletteColour(ReadOnlySpan<byte> palette, byte index, string path, int y, int x, out byte r, out byte g, out byte b)
    {
        int k = index * 3;
        if (k + 2 >= palette.Length)
            throw new InvalidDataException($"{path}: corrupt PNG (palette index {index} at row {y}, column {x}; the palette has {palette.Length / 3} colours).");
        r = palette[k]; g = palette[k + 1]; b = palette[k + 2];
    }

    /// <summary>Splits interleaved 3- or 4-byte pixels into the planes <paramref name="r"/>, <paramref name="g"/>,
    /// <paramref name="b"/> (a fourth sample is dropped).</summary>
    static void Deinterleave(ReadOnlySpan<byte> row, int channels, Span<byte> r, Span<byte> g, Span<byte> b)
    {
        int w = r.Length;
        if (row.Length < w * channels || g.Length < w || b.Length < w) throw new ArgumentException("row and planes disagree");
        ref byte src = ref MemoryMarshal.GetReference(row);
        ref byte rr = ref MemoryMarshal.GetReference(r), gg = ref MemoryMarshal.GetReference(g), bb = ref MemoryMarshal.GetReference(b);
        for (int x = 0, i = 0; x < w; x++, i += channels)
        {
            Unsafe.Add(ref rr, x) = Unsafe.Add(ref src, i);
            Unsafe.Add(ref gg, x) = Unsafe.Add(ref src, i + 1);
            Unsafe.Add(ref bb, x) = Unsafe.Add(ref src, i + 2);
        }
    }

    /// <summary>The PLTE chunk's RGB triples.</summary>
    static ReadOnlySpan<byte> Palette(ReadOnlySpan<byte> bytes, string path)
    {
        for (int pos = 8; pos + 8 <= bytes.Length;)
        {
            int length = (int)BinaryPrimitives.ReadUInt32BigEndian(bytes[pos..]);
            var type = bytes.Slice(pos + 4, 4);
            if (type.SequenceEqual("PLTE"u8))
            {
                if (length == 0 || length % 3 != 0 || length > 3 * 256)
                    throw new InvalidDataException($"{path}: malformed PNG (PLTE chunk of {length} bytes; it holds 1 to 256 RGB triples).");
                return bytes.Slice(pos + 8, length);
            }
            if (type.SequenceEqual("IDAT"u8) || type.SequenceEqual("IEND"u8)) break;
            pos += 12 + length;
        }
        throw new InvalidDataException($"{path}: malformed PNG (a palette image without a PLTE chunk before its image data).");
    }

    /// <summary>The checked image data of a non-interlaced image with its filters undone in place: row <c>y</c>'s
    /// samples start at <c>y * (RowBytes + 1) + 1</c>, after the row's filter byte. The buffer is rented from
    /// <see cref="ArrayPool{T}.Shared"/>: the caller returns it.</summary>
    static byte[] Unfiltered(ReadOnlySpan<byte> bytes, string path, PngHeader header, int bitsPerPixel)
    {
        var raw = Inflate(bytes, path, header);
        int rowBytes = (int)RowBytes(header.Width, bitsPerPixel);
        int bpp = Math.Max(1, bitsPerPixel / 8);
        var zeros = new byte[rowBytes];
        bool pairs = (bpp is 3 or 4) && Sse41.IsSupported && rowBytes >= 2 * bpp + 4;
        for (int y = 0; y < header.Height; y++)
        {
            int at = y * (rowBytes + 1);
            var prev = y == 0 ? zeros : raw.AsSpan(at - rowBytes, rowBytes);
            if (pairs && raw[at] == 4 && y + 1 < header.Height && raw[at + rowBytes + 1] == 4)
            {
                PaethPair(raw.AsSpan(at + 1, rowBytes), raw.AsSpan(at + rowBytes + 2, rowBytes), prev, bpp);
                y++;
                continue;
            }
            try { Unfilter(raw[at], raw.AsSpan(at + 1, rowBytes), prev, bpp, path, y); }
            catch { ArrayPool<byte>.Shared.Return(raw); throw; }
        }
        return raw;
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

    /// <summary>Inflates the IDAT stream to its end and checks it (length, Adler-32); returns the filtered scanlines
    /// (<see cref="RawLength"/> bytes) in a buffer rented from <see cref="ArrayPool{T}.Shared"/>, which the caller
    /// returns: decoding every image of an epoch into fresh large arrays cost more in page faults than inflating.</summary>
    static byte[] Inflate(ReadOnlySpan<byte> bytes, string path, PngHeader header)
    {
        long expected = RawLength(header, path);
        if (expected > Array.MaxLength)
            throw new InvalidDataException($"{path}: {header.Width} x {header.Height} image data ({expected} bytes) is too large to decode.");
        // The IDAT chunks' data, concatenated: one zlib stream.
        var chunks = new List<(int At, int Length)>();
        int total = 0;
        for (int pos = 8; ;)
        {
            int length = (int)BinaryPrimitives.ReadUInt32BigEndian(bytes[pos..]);
            var type = bytes.Slice(pos + 4, 4);
            if (type.SequenceEqual("IDAT"u8)) { chunks.Add((pos + 8, length)); total += length; }
            if (type.SequenceEqual("IEND"u8)) break;
            pos += 12 + length;
        }
        if (total < 2 + 4)
            throw new InvalidDataException($"{path}: corrupt PNG (no image data: {total} IDAT bytes).");
        var pool = ArrayPool<byte>.Shared;
        var stream = pool.Rent(total);
        var raw = pool.Rent((int)expected);
        int read = 0;
        bool more;
        try
        {
            int filled = 0;
            foreach (var (at, length) in chunks) { bytes.Slice(at, length).CopyTo(stream.AsSpan(filled)); filled += length; }
            using var idat = new MemoryStream(stream, 0, total, writable: false);
            using var z = new ZLibStream(idat, CompressionMode.Decompress);
            try
            {
                int n;
                while (read < expected && (n = z.Read(raw, read, (int)expected - read)) > 0) read += n;
                // Read on to the end of the stream: zlib checks the Adler-32 of the inflated data only there, and
                // data past the image is corruption too.
                more = read == expected && z.Read(stackalloc byte[1]) > 0;
            }
            catch (InvalidDataException e)
            {
                // zlib reports a wrong Adler-32 as "unsupported compression method": say what it can mean.
                throw new InvalidDataException($"{path}: corrupt PNG image data: the zlib stream fails its Adler-32 checksum or is malformed, after {read} of {expected} bytes ({e.Message}).", e);
            }
            if (read != expected)
                throw new InvalidDataException($"{path}: truncated PNG image data: it inflates to {read} of the {expected} bytes a {header.Width} x {header.Height} image needs.");
            if (more)
                throw new InvalidDataException($"{path}: corrupt PNG image data: it inflates to more than the {expected} bytes a {header.Width} x {header.Height} image needs.");
        }
        catch
        {
            pool.Return(raw);
            throw;
        }
        finally { pool.Return(stream); }
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
        if (Pclmulqdq.IsSupported && data.Length >= 64)
        {
            int folded = data.Length & ~15;
            c = Crc32Folded(c, data[..folded]);
            data = data[folded..];
        }
        return Crc32Bytewise(c, data) ^ 0xFFFFFFFFu;
    }

    /// <summary>The reference CRC loop, one table lookup per byte; the folded version is checked against it.</summary>
    internal static uint Crc32Bytewise(uint c, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return c;
    }

    /// <summary>CRC-32 by carry-less multiplication (Gopal et al., "Fast CRC Computation for Generic Polynomials Using
    /// PCLMULQDQ", Intel 2009; the reflected constants zlib and Chromium use): four 128-bit lanes folded 64 bytes at a
    /// time, then to one lane, to 64 bits, and a Barrett reduction to 32. Every image byte passes through a chunk CRC,
    /// and the table loop cost more than inflating. <paramref name="data"/>: a multiple of 16 bytes, at least 64.</summary>
    static uint Crc32Folded(uint crc, ReadOnlySpan<byte> data)
    {
        static Vector128<ulong> Load(ReadOnlySpan<byte> d, int at) => Vector128.Create<byte>(d.Slice(at, 16)).AsUInt64();
        static Vector128<ulong> Fold(Vector128<ulong> x, Vector128<ulong> k) =>
            Pclmulqdq.CarrylessMultiply(x, k, 0x00) ^ Pclmulqdq.CarrylessMultiply(x, k, 0x11);

        var x1 = Load(data, 0) ^ Vector128.CreateScalar(crc).AsUInt64();
        var x2 = Load(data, 16);
        var x3 = Load(data, 32);
        var x4 = Load(data, 48);
        var k1k2 = Vector128.Create(0x0154442bd4UL, 0x01c6e41596UL);
        int at = 64;
        for (; at + 64 <= data.Length; at += 64)
        {
            x1 = Fold(x1, k1k2) ^ Load(data, at);
            x2 = Fold(x2, k1k2) ^ Load(data, at + 16);
            x3 = Fold(x3, k1k2) ^ Load(data, at + 32);
            x4 = Fold(x4, k1k2) ^ Load(data, at + 48);
        }
        var k3k4 = Vector128.Create(0x01751997d0UL, 0x00ccaa009eUL);
        x1 = Fold(x1, k3k4) ^ x2;
        x1 = Fold(x1, k3k4) ^ x3;
        x1 = Fold(x1, k3k4) ^ x4;
        for (; at + 16 <= data.Length; at += 16) x1 = Fold(x1, k3k4) ^ Load(data, at);

        // 128 -> 64 bits.
        var mask32 = Vector128.Create(~0u, 0u, ~0u, 0u).AsUInt64();
        x2 = Pclmulqdq.CarrylessMultiply(x1, k3k4, 0x10);
        x1 = Sse2.ShiftRightLogical128BitLane(x1, 8) ^ x2;
        x2 = Sse2.ShiftRightLogical128BitLane(x1, 4);
        x1 = Pclmulqdq.CarrylessMultiply(x1 & mask32, Vector128.CreateScalar(0x0163cd6124UL), 0x00) ^ x2;
        // Barrett reduction by P(x) = 0x1db710641 with u = 0x1f7011641.
        var poly = Vector128.Create(0x01db710641UL, 0x01f7011641UL);
        x2 = Pclmulqdq.CarrylessMultiply(x1 & mask32, poly, 0x10) & mask32;
        x2 = Pclmulqdq.CarrylessMultiply(x2, poly, 0x00);
        return (x1 ^ x2).AsUInt32().GetElement(1);
    }

    /// <summary>Undoes one scanline's filter (PNG spec, section 9) in place; <paramref name="prev"/> is the row above,
    /// already unfiltered (zeros for the first row).</summary>
    static void Unfilter(int filter, Span<byte> row, ReadOnlySpan<byte> prev, int bpp, string path, int y)
    {
        int n = row.Length;
        if (filter is < 0 or > 4) throw new InvalidDataException($"{path}: corrupt PNG (unknown filter {filter} on row {y}).");
        if (filter == 0) return;
        if (filter == 2)
        {
            int i = 0;
            for (; i + Vector<byte>.Count <= n; i += Vector<byte>.Count)
                (new Vector<byte>(row[i..]) + new Vector<byte>(prev[i..])).CopyTo(row[i..]);
            for (; i < n; i++) row[i] += prev[i];
            return;
        }
        // Sub, Average and Paeth depend on the pixel to the left: byte loops are a chain of data-dependent branches
        // (Paeth) that cost more than inflating, so RGB and RGBA rows go one pixel per vector step.
        int start = (bpp is 3 or 4) && Sse41.IsSupported ? PixelSteps(filter, row, prev, bpp) : 0;
        switch (filter)
        {
            case 1:
                for (int i = Math.Max(start, bpp); i < n; i++) row[i] += row[i - bpp];
                break;
            case 3:
                for (int i = start; i < bpp && i < n; i++) row[i] += (byte)(prev[i] >> 1);
                for (int i = Math.Max(start, bpp); i < n; i++) row[i] += (byte)((row[i - bpp] + prev[i]) >> 1);
                break;
            case 4:
                PaethBytes(row, prev, bpp, start);
                break;
        }
    }

    /// <summary>Paeth from byte <paramref name="start"/> on, one byte at a time.</summary>
    static void PaethBytes(Span<byte> row, ReadOnlySpan<byte> prev, int bpp, int start)
    {
        // The first pixel has no left neighbours: Paeth(0, b, 0) is b.
        for (int i = start; i < bpp && i < row.Length; i++) row[i] += prev[i];
        for (int i = Math.Max(start, bpp); i < row.Length; i++)
        {
            int a = row[i - bpp], b = prev[i], c = prev[i - bpp];
            // |p - a|, |p - b|, |p - c| for p = a + b - c, without forming p.
            int pa = Math.Abs(b - c), pb = Math.Abs(a - c), pc = Math.Abs(a + b - 2 * c);
            row[i] += (byte)(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
        }
    }

    /// <summary>The Paeth predictor in 16-bit lanes, ties to a, then b, as the spec orders them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector128<short> Paeth(Vector128<short> a, Vector128<short> b, Vector128<short> c)
    {
        var pa = b - c;   // p - a, for p = a + b - c
        var pb = a - c;   // p - b
        var pc = Vector128.Abs(pa + pb);
        pa = Vector128.Abs(pa);
        pb = Vector128.Abs(pb);
        var smallest = Vector128.Min(pc, Vector128.Min(pa, pb));
        return Vector128.ConditionalSelect(Vector128.Equals(smallest, pa), a,
               Vector128.ConditionalSelect(Vector128.Equals(smallest, pb), b, c));
    }

    static Vector128<short> Widen(uint bytes) => Sse41.ConvertToVector128Int16(Vector128.CreateScalar(bytes).AsByte());

    /// <summary>Stores the low 3 or 4 bytes of <paramref name="pixel"/>. Three bytes go as two stores: a 4-byte store
    /// would overlap the next step's load, which the CPU cannot forward from a store (a stall per pixel that doubled
    /// the time).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StorePixel(ref byte at, uint pixel, int bpp)
    {
        if (bpp == 4) Unsafe.WriteUnaligned(ref at, pixel);
        else
        {
            Unsafe.WriteUnaligned(ref at, (ushort)pixel);
            Unsafe.Add(ref at, 2) = (byte)(pixel >> 16);
        }
    }

    /// <summary>Two Paeth rows at once, <paramref name="lower"/> (row y, above <paramref name="upper"/>) one pixel
    /// ahead: each step decodes pixel k of row y in lanes 0-3 and pixel k - 1 of row y + 1 in lanes 4-7, whose
    /// b (above) is the pixel row y decoded one step before. One pixel's Paeth is a chain of ~10 dependent
    /// instructions; two independent chains per step nearly halve the time (Paeth is most rows of camera
    /// images). Both rows' last pixels, which a 4-byte read would overrun, go byte by byte.</summary>
    static void PaethPair(Span<byte> lower, Span<byte> upper, ReadOnlySpan<byte> prev, int bpp)
    {
        int n = lower.Length;
        if (upper.Length != n || prev.Length != n || n < 2 * bpp + 4) throw new ArgumentException("rows disagree");
        ref byte r0 = ref MemoryMarshal.GetReference(lower);
        ref byte r1 = ref MemoryMarshal.GetReference(upper);
        ref byte p = ref MemoryMarshal.GetReference(prev);
        var low = Vector128.Create((short)0xFF);

        // Step 0: pixel 0 of row y alone (upper lanes stay 0, the "left of pixel 0" of row y + 1).
        var b = Widen(Unsafe.ReadUnaligned<uint>(ref p));
        var a = (Widen(Unsafe.ReadUnaligned<uint>(ref r0)) + b) & low;   // Paeth(0, b, 0) = b
        var c = b;
        StorePixel(ref r0, Sse2.PackUnsignedSaturate(a, a).AsUInt32().ToScalar(), bpp);

        int k = bpp;   // byte offset of pixel k in row y; row y + 1 works at k - bpp
        for (; k + 4 <= n; k += bpp)
        {
            // b: row y - 1 at k (lanes 0-3) and row y at k - bpp, just decoded (lanes 4-7).
            b = Sse2.UnpackLow(Widen(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref p, k))).AsUInt64(), a.AsUInt64()).AsInt16();
            var x = Sse2.UnpackLow(Widen(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref r0, k))).AsUInt64(),
                                   Widen(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref r1, k - bpp))).AsUInt64()).AsInt16();
            // a and c carry over: the pixels left of this step's, in both rows.
            a = (x + Paeth(a, b, c)) & low;
            c = b;
            ulong both = Sse2.PackUnsignedSaturate(a, a).AsUInt64().ToScalar();
            StorePixel(ref Unsafe.Add(ref r0, k), (uint)both, bpp);
            StorePixel(ref Unsafe.Add(ref r1, k - bpp), (uint)(both >> 32), bpp);
        }
        // Row y is decoded up to byte k, row y + 1 up to k - bpp: finish row y, then row y + 1 under it.
        PaethBytes(lower, prev, bpp, k);
        PaethBytes(upper, lower, bpp, k - bpp);
    }

    /// <summary>Sub (1), Average (3) or Paeth (4) for 3- or 4-byte pixels, one pixel per step in 16-bit lanes, without
    /// branches (the approach of libpng's SSE filters). Each step reads 4 bytes of both rows, so the loop stops
    /// before a 3-byte pixel whose read would leave them; returns where the byte loop goes on.</summary>
    static int PixelSteps(int filter, Span<byte> row, ReadOnlySpan<byte> prev, int bpp)
    {
        ref byte r = ref MemoryMarshal.GetReference(row);
        ref byte p = ref MemoryMarshal.GetReference(prev);
        var low = Vector128.Create((short)0xFF);
        Vector128<short> a = default, c = default;
        int i = 0, last = row.Length - 4;
        for (; i <= last; i += bpp)
        {
            var x = Widen(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref r, i)));
            var b = Widen(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref p, i)));
            Vector128<short> predictor;
            if (filter == 1) predictor = a;
            else if (filter == 3) predictor = Vector128.ShiftRightLogical(a + b, 1);
            else predictor = Paeth(a, b, c);
            a = (x + predictor) & low;
            c = b;
            StorePixel(ref Unsafe.Add(ref r, i), Sse2.PackUnsignedSaturate(a, a).AsUInt32().ToScalar(), bpp);
        }
        return i;
    }
}

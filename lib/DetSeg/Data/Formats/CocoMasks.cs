using static TorchSharp.torch;

namespace DetSeg.Data.Formats;

/// <summary>
/// COCO segmentations: run-length encodings (uncompressed <c>counts</c> lists and pycocotools' compressed strings)
/// and polygons, to and from binary masks. Runs alternate background/foreground starting with background and walk
/// the mask column by column (Fortran order), as pycocotools does.
/// </summary>
public static class CocoMasks
{
    /// <summary>Decodes run lengths into a [height x width] bool mask.</summary>
    /// <exception cref="ArgumentException">The runs do not add up to height·width.</exception>
    public static Tensor DecodeRle(IReadOnlyList<long> counts, int height, int width)
    {
        long total = counts.Sum();
        if (total != (long)height * width)
            throw new ArgumentException($"RLE counts add up to {total}, not height x width = {height} x {width} = {(long)height * width}.");
        var colMajor = new bool[(long)height * width];
        long p = 0;
        for (int i = 0; i < counts.Count; i++)
        {
            if (counts[i] < 0) throw new ArgumentException($"RLE count {i} is negative ({counts[i]}).");
            if (i % 2 == 1) Array.Fill(colMajor, true, (int)p, (int)counts[i]);
            p += counts[i];
        }
        using var t = tensor(colMajor, [width, height]);  // column-major: row index varies fastest
        return t.t().contiguous();
    }

    /// <summary>Run lengths of a [H x W] bool (or 0/1) mask, column by column, starting with background.</summary>
    public static long[] EncodeRle(Tensor mask)
    {
        using var colMajor = mask.to(ScalarType.Bool).t().contiguous().cpu();
        var flat = colMajor.data<bool>().ToArray();
        var counts = new List<long>();
        bool current = false; long run = 0;
        foreach (bool v in flat)
        {
            if (v != current) { counts.Add(run); run = 0; current = v; }
            run++;
        }
        counts.Add(run);
        return counts.ToArray();
    }

    /// <summary>Decodes pycocotools' compressed RLE string (LEB128-like 6-bit groups, runs after the second stored as differences).</summary>
    public static long[] DecompressCounts(string s)
    {
        var counts = new List<long>();
        int p = 0;
        while (p < s.Length)
        {
            long x = 0; int k = 0; bool more = true;
            while (more)
            {
                if (p >= s.Length) throw new ArgumentException($"Compressed RLE string ends inside a number at character {p}.");
                long c = s[p] - 48;
                x |= (c & 0x1f) << (5 * k);
                more = (c & 0x20) != 0;
                p++; k++;
                if (!more && (c & 0x10) != 0) x |= -1L << (5 * k);
            }
            if (counts.Count > 2) x += counts[^2];
            counts.Add(x);
        }
        return counts.ToArray();
    }

    /// <summary>
    /// Fills polygons [x0, y0, x1, y1, …] (pixel coordinates, pixel (c, r) spanning [c, c+1) x [r, r+1)) into a
    /// [height x width] bool mask: a pixel is inside when its centre is, by the even-odd rule, and several polygons
    /// are united. pycocotools rasterises edges slightly differently, so border pixels may differ from it.
    /// </summary>
    public static Tensor FillPolygons(IReadOnlyList<double[]> polygons, int height, int width)
    {
        var mask = new bool[height * width];
        var xs = new List<double>();
        foreach (var poly in polygons)
        {
            int n = poly.Length / 2;
            for (int r = 0; r < height; r++)
            {
                double y = r + 0.5;
                xs.Clear();
                for (int i = 0, j = n - 1; i < n; j = i++)
                {
                    double yi = poly[2 * i + 1], yj = poly[2 * j + 1];
                    if ((yi > y) != (yj > y))
                        xs.Add(poly[2 * i] + (y - yi) * (poly[2 * j] - poly[2 * i]) / (yj - yi));
                }
                xs.Sort();
                for (int k = 0; k + 1 < xs.Count; k += 2)
                {
                    // columns whose centre c + 0.5 lies in [xs[k], xs[k+1])
                    int c0 = Math.Max(0, (int)Math.Ceiling(xs[k] - 0.5)), c1 = Math.Min(width - 1, (int)Math.Ceiling(xs[k + 1] - 0.5) - 1);
                    for (int c = c0; c <= c1; c++) mask[r * width + c] = true; // spans of one polygon are disjoint; polygons unite
                }
            }
        }
        return tensor(mask, [height, width]);
    }
}

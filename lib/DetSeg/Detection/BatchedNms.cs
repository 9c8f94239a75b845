using System.Numerics;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;
using Floats = System.Numerics.Vector<float>;

namespace DetSeg.Detection;

/// <summary>
/// Per-class, per-image non-maximum suppression for a whole batch.
/// </summary>
/// <remarks>
/// TorchVision .NET has no <c>batched_nms</c>, and its <c>nms</c> syncs to the host once per kept box.
/// Here candidates are sorted by (image, class, score desc; ties by index). Float32 boxes on the CPU are then
/// scanned greedily on the host, IoU computed only from each kept box to the later boxes of its group (the
/// loop of torchvision's CPU kernel, vectorized). Elsewhere they are packed into padded groups
/// [G x M x 4]; the pairwise test IoU(i, j) &gt; threshold is computed on the device in row blocks
/// [G x R x M] and copied to the host once per block, where the greedy scan (keep i unless a kept earlier box
/// suppressed it, then mark what i suppresses) is a byte-wise OR per kept box — the split torchvision's CUDA
/// kernel uses. Host syncs: the candidate count, the group sizes, one mask copy per block, never one per box.
/// An earlier version replaced the scan with fixed-point rounds of keep·S on the device; on YOLO outputs the
/// suppression chains are long and it needed hundreds of rounds (1.1 s per 416 image against 63 ms in PyTorch).
/// </remarks>
public static class BatchedNms
{
    /// <summary>Largest IoU block (G·R·M elements) computed at once; bigger problems are split by groups and rows.</summary>
    public const long DefaultChunkElements = 1L << 22;

    /// <summary>
    /// Which detections survive: boxes [B x N x 4] (x_min, y_min, x_max, y_max), scores [B x N],
    /// labels [B x N] (int64), valid [B x N] bool (null: all). Returns keep [B x N] bool.
    /// Boxes of different images or classes never suppress each other; equal scores keep index order;
    /// a box is suppressed when its IoU with a kept, higher-ranked box is strictly greater than the threshold.
    /// </summary>
    public static Tensor Keep(Tensor boxes, Tensor scores, Tensor labels, double iouThreshold, Tensor? valid = null, long chunkElements = DefaultChunkElements)
        => Keep(boxes, scores, labels, iouThreshold, valid, chunkElements, hostScan: boxes.device_type == DeviceType.CPU && boxes.dtype == ScalarType.Float32);

    /// <summary><see cref="Keep(Tensor, Tensor, Tensor, double, Tensor?, long)"/> with the scan chosen: on the host
    /// (float32 CPU boxes only; IoU computed only for kept boxes) or by IoU blocks on the boxes' device.</summary>
    internal static Tensor Keep(Tensor boxes, Tensor scores, Tensor labels, double iouThreshold, Tensor? valid, long chunkElements, bool hostScan)
    {
        if (boxes.dim() != 3 || boxes.shape[2] != 4 || !scores.shape.SequenceEqual(boxes.shape[..2]) || !labels.shape.SequenceEqual(scores.shape))
            throw new ArgumentException($"BatchedNms.Keep expects boxes [B x N x 4], scores and labels [B x N]; got [{string.Join(", ", boxes.shape)}], [{string.Join(", ", scores.shape)}], [{string.Join(", ", labels.shape)}].");
        if (valid is not null && !valid.shape.SequenceEqual(scores.shape))
            throw new ArgumentException($"valid must be [B x N] like scores, got [{string.Join(", ", valid.shape)}].", nameof(valid));
        if (!(iouThreshold >= 0 && iouThreshold <= 1)) throw new ArgumentOutOfRangeException(nameof(iouThreshold), iouThreshold, "must be in [0, 1].");
        if (chunkElements < 1) throw new ArgumentOutOfRangeException(nameof(chunkElements), chunkElements, "must be at least 1.");
        long b = boxes.shape[0], n = boxes.shape[1];
        var dev = boxes.device;
        var keep = zeros(b * n, dtype: ScalarType.Bool, device: dev);
        if (b * n == 0) return keep.view(b, n);

        using (var scope = NewDisposeScope())
        {
            var flatBoxes = boxes.reshape(b * n, 4);
            var flatScores = scores.reshape(b * n);
            var flatLabels = labels.reshape(b * n).to(int64);
            // Runs per validation batch beside DataLoader workers: every Scalar is held (static or `using`), never a
            // temporary that a GC on another thread could free mid-call (Runtime/Scalars); arange(stop) makes two.
            Scalar zero = Runtime.Scalars.ZeroL, one = Runtime.Scalars.OneL;
            using Scalar bS = b, bnS = b * n;
            var image = arange(zero, bS, one, dtype: int64, device: dev).repeat_interleave(n);     // [B·N]
            var cand = valid is null ? arange(zero, bnS, one, dtype: int64, device: dev) : valid.reshape(b * n).nonzero().squeeze(1);
            long p = cand.shape[0];
            if (p == 0) return keep.view(b, n).MoveToOuterDisposeScope();

            // three stable sorts = one lexicographic sort by (image, label, -score, index)
            var c = cand.index(flatScores.index(cand).sort(0, true, true).Item2);
            c = c.index(flatLabels.index(c).sort(0, false, true).Item2);
            c = c.index(image.index(c).sort(0, false, true).Item2);
            var img = image.index(c); var lab = flatLabels.index(c);
            var starts0 = ones(1, dtype: ScalarType.Bool, device: dev);
            var change = cat(new[] { starts0, img[1..].ne(img[..^1]).logical_or(lab[1..].ne(lab[..^1])) });
            var group = change.to(int64).cumsum(0).sub(one);                            // [P] group id
            var counts = bincount(group);                                               // [G]
            long[] hostCounts = counts.cpu().data<long>().ToArray();

            if (hostScan)
            {
                if (boxes.device_type != DeviceType.CPU || boxes.dtype != ScalarType.Float32)
                    throw new ArgumentException($"the host scan needs float32 CPU boxes, got {boxes.dtype} on {boxes.device}.", nameof(boxes));
                var planes = flatBoxes.index(c).t().contiguous();                      // [4 x P] in scan order
                var keptHost = ScanOnHost(MemoryMarshal.Cast<byte, float>(planes.bytes), hostCounts, (float)iouThreshold);
                keep.index_put_(tensor(keptHost, dtype: ScalarType.Byte).to(ScalarType.Bool), c);
                return keep.view(b, n).MoveToOuterDisposeScope();
            }

            // the block path packs each group's boxes by their position in it
            var starts = counts.cumsum(0) - counts;
            using Scalar pS = p;
            var rank = arange(zero, pS, one, dtype: int64, device: dev) - starts.index(group); // [P] position in its group

            int g0 = 0; long p0 = 0;
            while (g0 < hostCounts.Length)
            {
                // groups [g0, g1) padded to m; similar sizes are neighbours only by chance, so cap the waste by elements
                int g1 = g0 + 1; long m = hostCounts[g0];
                while (g1 < hostCounts.Length)
                {
                    long m2 = Math.Max(m, hostCounts[g1]);
                    if ((g1 + 1 - g0) * m2 * m2 > chunkElements) break;
                    m = m2; g1++;
                }
                long p1 = p0; for (int g = g0; g < g1; g++) p1 += hostCounts[g];
                long gcount = g1 - g0;
                using (NewDisposeScope())
                {
                    var cc = c.slice(0, p0, p1, 1);
                    using Scalar g0S = (long)g0, mS = m;
                    var slot = group.slice(0, p0, p1, 1).sub(g0S).mul(mS).add(rank.slice(0, p0, p1, 1), one);     // [P_chunk]
                    var pb = zeros(gcount * m, 4, dtype: boxes.dtype, device: dev)
                        .index_put_(flatBoxes.index(cc), slot).view(gcount, m, 4);              // [G x M x 4], zero boxes pad
                    var kept = Scan(pb, hostCounts.AsSpan(g0, (int)gcount), iouThreshold, chunkElements);
                    var keptSlots = tensor(kept, dtype: ScalarType.Byte).to(dev).to(ScalarType.Bool);
                    keep.index_put_(keptSlots.index(slot), cc);
                }
                g0 = g1; p0 = p1;
            }
        }
        return keep.view(b, n);
    }

    /// <summary>Greedy NMS of G packed groups [G x M x 4] (group g holds counts[g] boxes in score order):
    /// the IoU test on the device in row blocks, the scan on the host. Returns kept flags per slot [G·M].</summary>
    static byte[] Scan(Tensor packed, ReadOnlySpan<long> counts, double iouThreshold, long chunkElements)
    {
        long g = packed.shape[0], m = packed.shape[1];
        var removed = new byte[g * m];
        var kept = new byte[g * m];
        // Row blocks of about M/8 follow the triangle j > i closely (≈ 56 % of the square instead of 100 %). On an
        // H200 one block per group was no faster (16.3 vs 13.9 ms on YOLO-416 outputs; 64M-element blocks 47.7 ms):
        // larger blocks copy and scan more of the square, which seems to cost more than the syncs they save.
        long rows = Math.Clamp(chunkElements / Math.Max(1, g * m), 1, Math.Max(64, (m + 7) / 8));
        for (long r0 = 0; r0 < m; r0 += rows)
        {
            long r1 = Math.Min(m, r0 + rows), width = m - r0;
            using var scope = NewDisposeScope();
            // only j ≥ r0 can be suppressed by rows r0..r1: [G x R x (M - r0)], bool = one byte per pair
            var s = Overlaps(packed.slice(1, r0, r1, 1), packed.slice(1, r0, m, 1), iouThreshold).cpu().contiguous();
            ReadOnlySpan<byte> over = s.bytes;                                       // view of s's storage (CPU), no copy
            for (long gi = 0; gi < g; gi++)
            {
                long count = counts[(int)gi];
                var rem = removed.AsSpan((int)(gi * m), (int)count);
                for (long i = r0; i < Math.Min(r1, count); i++)
                {
                    if (rem[(int)i] != 0) continue;
                    kept[gi * m + i] = 1;
                    // row i of group gi covers columns r0..m-1; suppress j in (i, count)
                    long rowStart = (gi * (r1 - r0) + (i - r0)) * width + (i + 1 - r0);
                    OrInto(rem[(int)(i + 1)..], over.Slice((int)rowStart, (int)(count - i - 1)));
                }
            }
        }
        return kept;
    }

    /// <summary>Greedy NMS of consecutive groups (group g: the next counts[g] boxes in score order) with coordinate
    /// planes x0 | y0 | x1 | y1 (each P long). Returns kept flags in scan order.</summary>
    /// <remarks>On the CPU the device path's IoU blocks cost more than the whole greedy scan: they test every pair,
    /// through a dozen tensor passes. Here IoU is computed only from kept boxes to the later boxes of their group,
    /// a vector register at a time, with the float32 operations of <see cref="Overlaps"/> in the same order (vector Min/Max carry
    /// NaN as torch.minimum/maximum and clamp do; the threshold compared in float32 as torch's gt does), so both paths
    /// keep the same boxes.</remarks>
    static byte[] ScanOnHost(ReadOnlySpan<float> planes, long[] counts, float threshold)
    {
        int p = planes.Length / 4;
        var x0 = planes[..p]; var y0 = planes[p..(2 * p)]; var x1 = planes[(2 * p)..(3 * p)]; var y1 = planes[(3 * p)..];
        var area = new float[p];
        for (int k = 0; k < p; k++) area[k] = MathF.Max(x1[k] - x0[k], 0f) * MathF.Max(y1[k] - y0[k], 0f);
        var removed = new int[p];
        var kept = new byte[p];
        int w = Floats.Count, start = 0;
        var zero = Floats.Zero; var t = new Floats(threshold);
        foreach (long count in counts)
        {
            int end = start + (int)count;
            for (int i = start; i < end; i++)
            {
                if (removed[i] != 0) continue;
                kept[i] = 1;
                float ix0 = x0[i], iy0 = y0[i], ix1 = x1[i], iy1 = y1[i], ia = area[i];
                var vx0 = new Floats(ix0); var vy0 = new Floats(iy0);
                var vx1 = new Floats(ix1); var vy1 = new Floats(iy1);
                var va = new Floats(ia);
                int j = i + 1;
                for (; j + w <= end; j += w)
                {
                    var iw = Vector.Max(Vector.Min(vx1, new Floats(x1[j..])) - Vector.Max(vx0, new Floats(x0[j..])), zero);
                    var ih = Vector.Max(Vector.Min(vy1, new Floats(y1[j..])) - Vector.Max(vy0, new Floats(y0[j..])), zero);
                    var inter = iw * ih;
                    var union = (va + new Floats(area, j)) - inter;
                    var over = Vector.GreaterThan(inter / union, t);
                    (new Vector<int>(removed, j) | over).CopyTo(removed, j);
                }
                for (; j < end; j++)
                {
                    float iw = MathF.Max(MathF.Min(ix1, x1[j]) - MathF.Max(ix0, x0[j]), 0f);
                    float ih = MathF.Max(MathF.Min(iy1, y1[j]) - MathF.Max(iy0, y0[j]), 0f);
                    float inter = iw * ih;
                    if (inter / ((ia + area[j]) - inter) > threshold) removed[j] = -1;
                }
            }
            start = end;
        }
        return kept;
    }

    /// <summary>IoU(row i, column j) &gt; threshold for rows [G x R x 4] and columns [G x C x 4] → [G x R x C] bool.</summary>
    /// <remarks>Same arithmetic as <see cref="BoxOps.Iou"/> (float division, so ties at the threshold agree with it and
    /// with torchvision), but on contiguous coordinate planes and in place: the generic version slices the last
    /// dimension and allocates a [G x R x C x 2] temporary, 5x slower here. 0/0 (two empty boxes) is NaN: not above.</remarks>
    static Tensor Overlaps(Tensor rows, Tensor cols, double threshold)
    {
        var r = rows.permute(2, 0, 1).contiguous().unsqueeze(-1);                  // [4 x G x R x 1]
        var c = cols.permute(2, 0, 1).contiguous().unsqueeze(-2);                  // [4 x G x 1 x C]
        var zero = Runtime.Scalars.ZeroL;                                            // held Scalars: see Keep
        using Scalar thresholdS = threshold;
        var areaR = (r[2] - r[0]).clamp_min_(zero).mul_((r[3] - r[1]).clamp_min_(zero)); // negative extents count as 0, as BoxOps.Area
        var areaC = (c[2] - c[0]).clamp_min_(zero).mul_((c[3] - c[1]).clamp_min_(zero));
        var inter = minimum(r[2], c[2]).sub_(maximum(r[0], c[0])).clamp_min_(zero)
            .mul_(minimum(r[3], c[3]).sub_(maximum(r[1], c[1])).clamp_min_(zero));    // [G x R x C]
        var union = areaR.add(areaC, Runtime.Scalars.OneL).sub_(inter);
        return inter.div_(union).gt_(thresholdS).to(ScalarType.Bool);
    }

    static void OrInto(Span<byte> dst, ReadOnlySpan<byte> src)
    {
        int k = 0, w = Vector<byte>.Count;
        for (; k + w <= src.Length; k += w)
            (new Vector<byte>(dst[k..]) | new Vector<byte>(src[k..])).CopyTo(dst[k..]);
        for (; k < src.Length; k++) dst[k] |= src[k];
    }

    /// <summary>Single-image convenience: boxes [N x 4] xyxy, scores [N], labels [N] → kept indices sorted by score.</summary>
    public static Tensor Nms(Tensor boxes, Tensor scores, Tensor labels, double iouThreshold)
    {
        using var scope = NewDisposeScope();
        var keep = Keep(boxes.unsqueeze(0), scores.unsqueeze(0), labels.unsqueeze(0), iouThreshold).squeeze(0);
        var idx = keep.nonzero().squeeze(1);
        return idx.index(scores.index(idx).sort(0, true, true).Item2).MoveToOuterDisposeScope();
    }
}

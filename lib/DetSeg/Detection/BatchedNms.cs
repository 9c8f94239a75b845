using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Detection;

/// <summary>
/// Per-class, per-image non-maximum suppression for a whole batch, vectorized on the tensors' device.
/// </summary>
/// <remarks>
/// TorchVision .NET has no <c>batched_nms</c>, and its <c>nms</c> syncs to the host once per kept box.
/// Here candidates are sorted by (image, class, score desc; ties by index), packed into padded groups
/// [G x M x 4], and the suppression matrix S[i, j] = (i before j) ∧ IoU(i, j) &gt; threshold is built once.
/// Greedy NMS keeps j iff no KEPT earlier box suppresses it: keep = valid ∧ ¬(keep · S). Iterating that
/// from keep = valid reaches the greedy answer exactly (each round fixes at least the next box of every
/// suppression chain; in practice a handful of rounds). Host syncs: the candidate count, the group sizes,
/// and one flag per round — never one per box.
/// </remarks>
public static class BatchedNms
{
    /// <summary>Largest padded IoU block (G·M·M elements) computed at once; bigger batches are chunked by groups.</summary>
    public const long DefaultChunkElements = 1L << 24;

    /// <summary>
    /// Which detections survive: boxes [B x N x 4] (x_min, y_min, x_max, y_max), scores [B x N],
    /// labels [B x N] (int64), valid [B x N] bool (null: all). Returns keep [B x N] bool.
    /// Boxes of different images or classes never suppress each other; equal scores keep index order;
    /// a box is suppressed when its IoU with a kept, higher-ranked box is strictly greater than the threshold.
    /// </summary>
    public static Tensor Keep(Tensor boxes, Tensor scores, Tensor labels, double iouThreshold, Tensor? valid = null, long chunkElements = DefaultChunkElements)
    {
        if (boxes.dim() != 3 || boxes.shape[2] != 4 || !scores.shape.SequenceEqual(boxes.shape[..2]) || !labels.shape.SequenceEqual(scores.shape))
            throw new ArgumentException($"BatchedNms.Keep expects boxes [B x N x 4], scores and labels [B x N]; got [{string.Join(", ", boxes.shape)}], [{string.Join(", ", scores.shape)}], [{string.Join(", ", labels.shape)}].");
        if (valid is not null && !valid.shape.SequenceEqual(scores.shape))
            throw new ArgumentException($"valid must be [B x N] like scores, got [{string.Join(", ", valid.shape)}].", nameof(valid));
        long b = boxes.shape[0], n = boxes.shape[1];
        var dev = boxes.device;
        var keep = zeros(b * n, dtype: ScalarType.Bool, device: dev);
        if (b * n == 0) return keep.view(b, n);

        using (var scope = NewDisposeScope())
        {
            var flatBoxes = boxes.reshape(b * n, 4);
            var flatScores = scores.reshape(b * n);
            var flatLabels = labels.reshape(b * n).to(int64);
            var image = arange(b, dtype: int64, device: dev).repeat_interleave(n);     // [B·N]
            var cand = valid is null ? arange(b * n, dtype: int64, device: dev) : valid.reshape(b * n).nonzero().squeeze(1);
            long p = cand.shape[0];
            if (p > 0)
            {
                // three stable sorts = one lexicographic sort by (image, label, -score, index)
                var c = cand.index(flatScores.index(cand).sort(0, true, true).Item2);
                c = c.index(flatLabels.index(c).sort(0, false, true).Item2);
                c = c.index(image.index(c).sort(0, false, true).Item2);
                var img = image.index(c); var lab = flatLabels.index(c);
                var starts0 = ones(1, dtype: ScalarType.Bool, device: dev);
                var change = cat(new[] { starts0, img[1..].ne(img[..^1]).logical_or(lab[1..].ne(lab[..^1])) });
                var group = change.to(int64).cumsum(0) - 1;                                 // [P] group id
                var counts = bincount(group);                                               // [G]
                var starts = counts.cumsum(0) - counts;
                var rank = arange(p, dtype: int64, device: dev) - starts.index(group);      // [P] position in its group
                long[] hostCounts = counts.cpu().data<long>().ToArray();

                int g0 = 0; long p0 = 0;
                while (g0 < hostCounts.Length)
                {
                    int g1 = g0 + 1; long m = hostCounts[g0];
                    while (g1 < hostCounts.Length)
                    {
                        long m2 = Math.Max(m, hostCounts[g1]);
                        if ((g1 + 1 - g0) * m2 * m2 > chunkElements) break;
                        m = m2; g1++;
                    }
                    long p1 = p0; for (int g = g0; g < g1; g++) p1 += hostCounts[g];
                    var cc = c.slice(0, p0, p1, 1);
                    var slot = (group.slice(0, p0, p1, 1) - g0) * m + rank.slice(0, p0, p1, 1);                    // [P_chunk]
                    long gcount = g1 - g0;
                    var packed = zeros(gcount * m, 4, dtype: boxes.dtype, device: dev).index_put_(flatBoxes.index(cc), slot);
                    var present = zeros(gcount * m, dtype: ScalarType.Bool, device: dev).index_put_(ones(p1 - p0, dtype: ScalarType.Bool, device: dev), slot);
                    var pb = packed.view(gcount, m, 4);                                     // [G x M x 4]
                    var pv = present.view(gcount, m);                                       // [G x M]
                    var earlier = ones(m, m, dtype: ScalarType.Bool, device: dev).triu(1);  // [M x M], i < j
                    var s = BoxOps.Iou(pb, pb).gt(iouThreshold).logical_and(earlier)
                              .logical_and(pv.unsqueeze(2)).logical_and(pv.unsqueeze(1)).to(float32); // [G x M x M]
                    var k = pv.clone();
                    for (long round = 0; round <= m; round++)
                    {
                        var suppressed = k.to(float32).unsqueeze(1).bmm(s).squeeze(1).gt(0);   // [G x M]
                        var next = pv.logical_and(suppressed.logical_not());
                        bool done = !next.ne(k).any().item<bool>();
                        k = next;
                        if (done) break;
                    }
                    keep.index_put_(k.view(-1).index(slot), cc);
                    g0 = g1; p0 = p1;
                }
            }
        }
        return keep.view(b, n);
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

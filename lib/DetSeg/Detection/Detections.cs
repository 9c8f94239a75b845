using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Detection;

/// <summary>
/// A batch of detections padded to the largest count: scores [B x M] (descending per image),
/// boxes [B x M x 4] (normalized cx, cy, w, h), labels [B x M] int64 with -1 for padding.
/// </summary>
public sealed record Detections(Tensor Scores, Tensor Boxes, Tensor Labels) : IDisposable
{
    /// <summary>Number of real detections per image.</summary>
    public long[] Counts() => Labels.ge(Runtime.Scalars.ZeroL).sum(1).cpu().data<long>().ToArray();

    /// <summary>Moves the three tensors out of the current dispose scope.</summary>
    public Detections MoveToOuter() { Scores.MoveToOuterDisposeScope(); Boxes.MoveToOuterDisposeScope(); Labels.MoveToOuterDisposeScope(); return this; }

    /// <inheritdoc/>
    public void Dispose() { Scores.Dispose(); Boxes.Dispose(); Labels.Dispose(); }

    /// <summary>
    /// Gathers the kept detections [B x N] of each image, sorted by score, padded with (0, 0, -1).
    /// One host sync (the largest kept count) fixes the output width.
    /// </summary>
    public static Detections FromKeep(Tensor scores, Tensor boxes, Tensor labels, Tensor keep, int maxDetections = 0)
    {
        long b = scores.shape[0];
        // Per validation batch beside DataLoader workers: held Scalars only (Runtime/Scalars).
        var masked = where(keep, scores, full_like(scores, Runtime.Scalars.MinusOne)); // [B x N]
        var order = masked.sort(1, true, true).Item2;  // [B x N]
        long m = keep.sum(1).max().item<long>();
        if (maxDetections > 0) m = Math.Min(m, maxDetections);
        var idx = order[.., ..(int)m];                                      // [B x M]
        var k = keep.gather(1, idx);
        var s = scores.gather(1, idx).masked_fill(k.logical_not(), Runtime.Scalars.ZeroL);
        var bx = boxes.gather(1, idx.unsqueeze(-1).expand(b, m, 4)).masked_fill(k.logical_not().unsqueeze(-1), Runtime.Scalars.ZeroL);
        var l = labels.gather(1, idx).masked_fill(k.logical_not(), Runtime.Scalars.MinusOneL);
        return new Detections(s, bx, l);
    }
}

using TorchSharp;
using static TorchSharp.torch;
using Scalars = DetSeg.Runtime.Scalars;

namespace DetSeg.Detection;

/// <summary>Box utilities on tensors of any leading shape [... x 4]; they follow the input's device.</summary>
public static class BoxOps
{
    static void Check(Tensor boxes, string name)
    {
        if (boxes.dim() < 1 || boxes.shape[^1] != 4)
            throw new ArgumentException($"{name} must be [... x 4], got [{string.Join(", ", boxes.shape)}].", name);
    }

    /// <summary>(cx, cy, w, h) → (x_min, y_min, x_max, y_max).</summary>
    public static Tensor CxCyWhToXyxy(Tensor boxes)
    {
        Check(boxes, nameof(boxes));
        var c = boxes[TensorIndex.Ellipsis, TensorIndex.Slice(0, 2)];
        var half = boxes[TensorIndex.Ellipsis, TensorIndex.Slice(2, 4)].div(Scalars.TwoL);
        // Held Scalars, no `+`/`/ 2`: these run per batch in the loss (temporary Scalars, see Runtime/Scalars).
        return cat(new[] { c - half, c.add(half, Scalars.OneL) }, -1);
    }

    /// <summary>(x_min, y_min, x_max, y_max) → (cx, cy, w, h).</summary>
    public static Tensor XyxyToCxCyWh(Tensor boxes)
    {
        Check(boxes, nameof(boxes));
        var lo = boxes[TensorIndex.Ellipsis, TensorIndex.Slice(0, 2)];
        var hi = boxes[TensorIndex.Ellipsis, TensorIndex.Slice(2, 4)];
        return cat(new[] { lo.add(hi, Scalars.OneL).div(Scalars.TwoL), hi - lo }, -1);
    }

    /// <summary>Box areas [...] of xyxy boxes [... x 4] (negative extents count as 0).</summary>
    public static Tensor Area(Tensor xyxy)
    {
        Check(xyxy, nameof(xyxy));
        var wh = (xyxy[TensorIndex.Ellipsis, TensorIndex.Slice(2, 4)] - xyxy[TensorIndex.Ellipsis, TensorIndex.Slice(0, 2)]).clamp_min(Scalars.ZeroL);
        return wh[TensorIndex.Ellipsis, 0] * wh[TensorIndex.Ellipsis, 1];
    }

    /// <summary>
    /// IoU matrix between xyxy boxes a [... x N x 4] and b [... x M x 4] (leading dims broadcast): [... x N x M].
    /// Two empty boxes give 0, not NaN.
    /// </summary>
    public static Tensor Iou(Tensor a, Tensor b)
    {
        Check(a, nameof(a)); Check(b, nameof(b));
        var areaA = Area(a).unsqueeze(-1);                                  // [... x N x 1]
        var areaB = Area(b).unsqueeze(-2);                                  // [... x 1 x M]
        var a2 = a.unsqueeze(-2); var b2 = b.unsqueeze(-3);                  // [... x N x 1 x 4], [... x 1 x M x 4]
        var lo = maximum(a2[TensorIndex.Ellipsis, TensorIndex.Slice(0, 2)], b2[TensorIndex.Ellipsis, TensorIndex.Slice(0, 2)]);
        var hi = minimum(a2[TensorIndex.Ellipsis, TensorIndex.Slice(2, 4)], b2[TensorIndex.Ellipsis, TensorIndex.Slice(2, 4)]);
        var wh = (hi - lo).clamp_min(Scalars.ZeroL);                                   // [... x N x M x 2]
        var inter = wh[TensorIndex.Ellipsis, 0] * wh[TensorIndex.Ellipsis, 1];
        var union = areaA.add(areaB, Scalars.OneL) - inter;
        return where(union.gt(Scalars.ZeroL), inter / union.clamp_min(Scalars.Tiny), zeros_like(inter));
    }

    // 4/π², CIoU's aspect-ratio weight; held for the process's life (this runs every training step).
    static readonly Scalar FourOverPiSquared = (4 / (Math.PI * Math.PI)).ToScalar();

    /// <summary>
    /// Complete IoU (Zheng et al., "Distance-IoU Loss", AAAI 2020) of paired cx,cy,w,h boxes a and b [... x 4] → [...]:
    /// IoU − ρ²/c² − α·v, where ρ is the distance between the centres, c the diagonal of the smallest box enclosing
    /// both, v = 4/π²·(atan(w_b/h_b) − atan(w_a/h_a))² the aspect-ratio mismatch and α = v / (1 − IoU + v), a weight
    /// that carries no gradient (as in the paper's implementation). In [−1.5, 1]; 1 only for equal boxes.
    /// </summary>
    public static Tensor CompleteIou(Tensor a, Tensor b)
    {
        Check(a, nameof(a)); Check(b, nameof(b));
        var axy = CxCyWhToXyxy(a); var bxy = CxCyWhToXyxy(b);
        var lo = maximum(axy[TensorIndex.Ellipsis, TensorIndex.Slice(0, 2)], bxy[TensorIndex.Ellipsis, TensorIndex.Slice(0, 2)]);
        var hi = minimum(axy[TensorIndex.Ellipsis, TensorIndex.Slice(2, 4)], bxy[TensorIndex.Ellipsis, TensorIndex.Slice(2, 4)]);
        var wh = (hi - lo).clamp_min(Scalars.ZeroL);
        var inter = wh[TensorIndex.Ellipsis, 0] * wh[TensorIndex.Ellipsis, 1];
        var union = Area(axy).add(Area(bxy), Scalars.OneL).sub(inter).clamp_min(Scalars.Tiny);
        var iou = inter / union;
        var encLo = minimum(axy[TensorIndex.Ellipsis, TensorIndex.Slice(0, 2)], bxy[TensorIndex.Ellipsis, TensorIndex.Slice(0, 2)]);
        var encHi = maximum(axy[TensorIndex.Ellipsis, TensorIndex.Slice(2, 4)], bxy[TensorIndex.Ellipsis, TensorIndex.Slice(2, 4)]);
        var c2 = (encHi - encLo).pow(Scalars.TwoL).sum(-1).clamp_min(Scalars.Tiny);    // squared enclosing diagonal
        var rho2 = (a[TensorIndex.Ellipsis, TensorIndex.Slice(0, 2)] - b[TensorIndex.Ellipsis, TensorIndex.Slice(0, 2)]).pow(Scalars.TwoL).sum(-1);
        var aspectA = a[TensorIndex.Ellipsis, 2].atan2(a[TensorIndex.Ellipsis, 3]);      // atan(w/h), h > 0
        var aspectB = b[TensorIndex.Ellipsis, 2].atan2(b[TensorIndex.Ellipsis, 3]);
        var v = (aspectB - aspectA).pow(Scalars.TwoL).mul(FourOverPiSquared);
        Tensor alpha;
        using (no_grad())
            alpha = v / v.sub(iou).add(Scalars.One, Scalars.OneL).clamp_min(Scalars.Tiny);
        return iou - rho2 / c2 - alpha * v;
    }

    /// <summary>
    /// For every predicted box, its best IoU with any valid true box of the SAME image (batch items
    /// are independent). Boxes are cx,cy,w,h: pred [B x N x 4], truth [B x M x 4], valid [B x M] bool
    /// (null: all valid). Images without valid truth give 0.
    /// </summary>
    public static Tensor BestIou(Tensor pred, Tensor truth, Tensor? valid = null)
    {
        if (pred.dim() != 3 || truth.dim() != 3 || pred.shape[0] != truth.shape[0])
            throw new ArgumentException($"BestIou expects pred [B x N x 4] and truth [B x M x 4] with the same B, got [{string.Join(", ", pred.shape)}] and [{string.Join(", ", truth.shape)}].");
        if (truth.shape[1] == 0) return zeros(pred.shape[0], pred.shape[1], dtype: pred.dtype, device: pred.device);
        var iou = Iou(CxCyWhToXyxy(pred), CxCyWhToXyxy(truth));          // [B x N x M]
        if (valid is not null) iou = iou.masked_fill(valid.logical_not().unsqueeze(1), Scalars.ZeroL);
        return iou.amax(new long[] { -1 });                                  // [B x N]
    }

    /// <summary>IoU of box SIZES, as if centred together: wh [... x N x 2] vs anchors [M x 2] → [... x N x M].</summary>
    public static Tensor SizeIou(Tensor wh, Tensor anchorsWh)
    {
        var w = wh.unsqueeze(-2); var a = anchorsWh;                         // [... x N x 1 x 2], [M x 2]
        var inter = minimum(w, a).prod(-1);                                  // [... x N x M]
        var union = w.prod(-1).add(a.prod(-1), Scalars.OneL) - inter;
        return inter / union.clamp_min(Scalars.Tiny);
    }

    /// <summary>
    /// A box as a binary mask [H x W] int64 (1 inside, 0 outside): pixel (row y, column x) is inside when its top-left
    /// corner lies in [x_min, x_max) x [y_min, y_max). Rows come first, as everywhere in torch: the y extent
    /// selects rows, the x extent columns. For boxes with integer pixel corners, the IoU of two such masks
    /// (<c>ClassificationMetrics.IoU</c> of class 1) equals <see cref="Iou"/> of the boxes.
    /// </summary>
    /// <param name="xyxy">One box [4] (x_min, y_min, x_max, y_max) in pixels.</param>
    /// <param name="height">Mask height (rows).</param>
    /// <param name="width">Mask width (columns).</param>
    /// <exception cref="ArgumentException">The box is not a [4] tensor.</exception>
    public static Tensor ToMask(Tensor xyxy, long height, long width)
    {
        if (xyxy.dim() != 1 || xyxy.shape[0] != 4)
            throw new ArgumentException($"ToMask expects one xyxy box [4], got [{string.Join(", ", xyxy.shape)}].", nameof(xyxy));
        using var scope = NewDisposeScope();
        using Scalar h = height, w = width;                                  // held: arange(stop) makes temporaries
        var ys = arange(Scalars.ZeroL, h, Scalars.OneL, device: xyxy.device).to(xyxy.dtype).unsqueeze(1);   // [H x 1]
        var xs = arange(Scalars.ZeroL, w, Scalars.OneL, device: xyxy.device).to(xyxy.dtype).unsqueeze(0);    // [1 x W]
        var inside = ys.ge(xyxy[1]).logical_and(ys.lt(xyxy[3])).logical_and(xs.ge(xyxy[0])).logical_and(xs.lt(xyxy[2]));  // [H x W]
        return inside.to(ScalarType.Int64).MoveToOuterDisposeScope();
    }
}

using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using Scalars = DetSeg.Runtime.Scalars;

namespace DetSeg.Detection;

/// <summary>How a true box picks its anchor.</summary>
public enum AnchorAssignment
{
    /// <summary>Largest IoU of sizes (centred boxes), as YOLOv3 does. The default.</summary>
    SizeIou,
    /// <summary>The course's rule: largest intersection of sizes. It favours the biggest anchors: on MNIST clutter
    /// every box goes to the coarsest set (14 of 14 in a reference batch). Kept for the notebook's explanation.</summary>
    MaxIntersection,
}

/// <summary>The units of the box-centre error.</summary>
public enum CentreUnits
{
    /// <summary>Grid-cell units of the assigned set (error × S): the default; reaches mAP@0.5 0.80 on MNIST clutter.</summary>
    GridCell,
    /// <summary>The course's whole-image units: tiny errors, above all on the fine grid; boxes stay loose.</summary>
    Image,
}

/// <summary>How the box of a responsible prediction is penalised.</summary>
public enum BoxLoss
{
    /// <summary>The course's: squared centre error plus squared log-size error, each weighted by 2 − w·h.</summary>
    Course,
    /// <summary>
    /// 2·(2 − w·h)·(1 − CIoU) (<see cref="BoxOps.CompleteIou"/>, used since YOLOv4): one term for centre, size and
    /// aspect that measures what the evaluation's IoU thresholds measure; <see cref="YoloLossTerms.Wh"/> is then 0.
    /// </summary>
    CompleteIou,
}

/// <summary>What a responsible prediction's objectness is pushed towards.</summary>
public enum ObjectnessTarget
{
    /// <summary>1, the course's.</summary>
    One,
    /// <summary>The prediction's current CIoU with its true box, clamped to [0, 1] and without gradient (YOLOv5's): scores then rank boxes by how well they fit.</summary>
    Iou,
}

/// <summary>The loss terms of one batch (sums over the batch, as the course). With <see cref="BoxLoss.CompleteIou"/>, <c>Xy</c> holds the whole box term and <c>Wh</c> is 0.</summary>
public sealed record YoloLossTerms(Tensor Obj, Tensor NoObj, Tensor Xy, Tensor Wh, Tensor Cls, Tensor Total, long NumTargets);

/// <summary>
/// The course's YOLOv3 loss: obj + 0.5·noobj + (xy + wh) + cls, every term a SUM over the batch.
/// Targets are put in the model's output layout (best anchor, cell of the centre); objectness BCE on
/// true boxes; no-object BCE on all others except predictions whose IoU with a true box of the same image
/// exceeds <c>ignoreIou</c>; MSE on xy and on log wh, each scaled by (2 − w·h); class cross-entropy.
/// </summary>
/// <remarks>
/// Fixed course bugs: (1) the target position lacked the offset of its detection set in the concatenated
/// output; (2) anchors are assigned by IoU of sizes (the course's max-intersection starves the fine sets);
/// (3) log of a zero target width (1-pixel objects) gave inf: target sizes are clamped to one pixel.
/// </remarks>
public sealed class CustomYOLOv3Loss : nn.Module<(Tensor scores, Tensor boxes, Tensor logits), (Tensor boxes, Tensor labels), Tensor>
{
    /// <summary>Square image size in pixels.</summary>
    public int ImageSize { get; }
    /// <summary>Predictions with IoU above this to a true box are not pushed towards "no object".</summary>
    public double IgnoreIou { get; }
    /// <summary>Anchor assignment rule.</summary>
    public AnchorAssignment Assignment { get; }
    /// <summary>Units of the centre error.</summary>
    public CentreUnits Centre { get; }
    /// <summary>How responsible boxes are penalised.</summary>
    public BoxLoss Box { get; }
    /// <summary>The objectness target of responsible predictions.</summary>
    public ObjectnessTarget Objectness { get; }
    /// <summary>Anchors [D x K x 2] in pixels (a buffer).</summary>
    public readonly Tensor anchors;
    /// <summary>Grid sizes of the D = 3 sets: image / 32, / 16, / 8 (a buffer).</summary>
    public readonly Tensor set_size;
    /// <summary>The grid size S of every output position [N], in the model's output layout (a buffer, for grid-cell units).</summary>
    public readonly Tensor cell_scale;
    // The same sizes on the host: known at construction, so the per-step code never reads them back from the device.
    readonly long[] setSizes;
    // This loss runs every training step: each number it passes to TorchSharp is a Scalar held for the module's
    // life (or a shared one in Runtime.Scalars), never a temporary a GC on another thread could free mid-call.
    readonly Scalar ignoreIou, minWh, imageSizeS, numAnchorsS;
    static readonly Scalar BoxGain = 2.0.ToScalar();

    /// <summary>Creates the loss for <paramref name="imageSize"/>-pixel square images and the model's anchors [3 x K x 2].</summary>
    public CustomYOLOv3Loss(int imageSize, Tensor anchors, double ignoreIou = 0.5,
                            AnchorAssignment assignment = AnchorAssignment.SizeIou, CentreUnits centre = CentreUnits.GridCell,
                            BoxLoss box = BoxLoss.Course, ObjectnessTarget objectness = ObjectnessTarget.One)
        : base(nameof(CustomYOLOv3Loss))
    {
        if (imageSize < 32 || imageSize % 32 != 0) throw new ArgumentException($"imageSize must be a positive multiple of 32, got {imageSize}.", nameof(imageSize));
        if (anchors.dim() != 3 || anchors.shape[0] != 3 || anchors.shape[2] != 2)
            throw new ArgumentException($"anchors must be [3 x K x 2] pixels, got [{string.Join(", ", anchors.shape)}].", nameof(anchors));
        ImageSize = imageSize; IgnoreIou = ignoreIou; Assignment = assignment; Centre = centre; Box = box; Objectness = objectness;
        this.ignoreIou = ignoreIou.ToScalar();
        minWh = (1.0 / imageSize).ToScalar();
        imageSizeS = imageSize.ToScalar();
        numAnchorsS = anchors.shape[1].ToScalar();
        this.anchors = anchors.detach().to(float32).clone();
        setSizes = [imageSize / 32, imageSize / 16, imageSize / 8];
        long k = anchors.shape[1];
        NumPredictions = k * setSizes.Sum(s => s * s);
        set_size = tensor(setSizes, device: this.anchors.device);
        cell_scale = cat(setSizes.Select(s => full(k * s * s, (float)s, dtype: float32, device: this.anchors.device)).ToArray()); // [N]
        RegisterComponents();
    }

    /// <summary>Total loss (see <see cref="Terms"/>).</summary>
    public override Tensor forward((Tensor scores, Tensor boxes, Tensor logits) pred, (Tensor boxes, Tensor labels) truth) =>
        Terms(pred, truth).Total;

    /// <summary>Every term of the loss for predictions from <see cref="YOLOv3"/>.forward and padded targets
    /// (boxes [B x M x 4] cx,cy,w,h normalized, labels [B x M] int64, -1 = padding).</summary>
    public YoloLossTerms Terms((Tensor scores, Tensor boxes, Tensor logits) pred, (Tensor boxes, Tensor labels) truth)
    {
        var (pScore, pBox, pLogit) = pred;
        var (bBox, bLabel) = truth;
        if (bBox.dim() != 3 || bBox.shape[2] != 4 || bLabel.dim() != 2 || bLabel.shape[0] != bBox.shape[0] || bLabel.shape[1] != bBox.shape[1])
            throw new ArgumentException($"targets must be boxes [B x M x 4] and labels [B x M], got [{string.Join(", ", bBox.shape)}] and [{string.Join(", ", bLabel.shape)}].");
        long n = NumPredictions;
        if (pScore.dim() != 2 || pScore.shape[1] != n || pScore.shape[0] != bBox.shape[0])
            throw new ArgumentException($"predictions must be [B x {n}] for {ImageSize}-pixel images with {anchors.shape[1]} anchors, got scores [{string.Join(", ", pScore.shape)}] for B = {bBox.shape[0]}.");

        var (tBox, tLabel, tCellScale) = ConvertToYoloFormat(bBox, bLabel);   // [B x N x 4], [B x N], [B x N]
        var trueBox = tLabel.ge(Scalars.ZeroL);                                            // [B x N]
        var highIou = BoxOps.BestIou(pBox.detach(), bBox, bLabel.ge(Scalars.ZeroL)).gt(ignoreIou);
        var falseBox = trueBox.logical_or(highIou).logical_not();

        var idx = trueBox.nonzero();                                           // [T x 2] (image, position), row-major as masked_select
        var pb = pBox.index(new[] { idx[.., 0], idx[.., 1] });                 // [T x 4]
        var tb = tBox.index(new[] { idx[.., 0], idx[.., 1] });                 // [T x 4]
        var pxy = pb[.., ..2]; var pwh = pb[.., 2..];
        var txy = tb[.., ..2]; var twh = tb[.., 2..].clamp_min(minWh);
        var factor = (twh[.., 0] * twh[.., 1]).negative().add(Scalars.Two, Scalars.OneL); // 2 - w·h, as TorchSharp's `2.0 - t`: bigger weight for small boxes
        Tensor? ciou = Box == BoxLoss.CompleteIou || Objectness == ObjectnessTarget.Iou
            ? BoxOps.CompleteIou(pb, cat(new[] { txy, twh }, -1)) : null;    // [T]

        var sTrue = pScore.masked_select(trueBox);
        var sFalse = pScore.masked_select(falseBox);
        var objTarget = Objectness == ObjectnessTarget.Iou ? ciou!.detach().clamp(Scalars.ZeroL, Scalars.OneL) : ones_like(sTrue);
        var lossObj = F.binary_cross_entropy_with_logits(sTrue, objTarget, reduction: nn.Reduction.Sum);
        var lossNoObj = F.binary_cross_entropy_with_logits(sFalse, zeros_like(sFalse), reduction: nn.Reduction.Sum);

        Tensor lossXy, lossWh;
        if (Box == BoxLoss.CompleteIou)
        {
            lossXy = (factor * ciou!.negative().add(Scalars.One, Scalars.OneL)).sum().mul(BoxGain);
            lossWh = zeros_like(lossXy);
        }
        else
        {
            var dxy = pxy - txy;
            if (Centre == CentreUnits.GridCell) dxy = dxy * tCellScale.index(new[] { idx[.., 0], idx[.., 1] }).unsqueeze(1);
            lossXy = (factor * dxy.pow(Scalars.TwoL).sum(-1)).sum();
            lossWh = (factor * (pwh.log() - twh.log()).pow(Scalars.TwoL).sum(-1)).sum();
        }
        var lossCls = F.cross_entropy(pLogit.index(new[] { idx[.., 0], idx[.., 1] }), tLabel.index(new[] { idx[.., 0], idx[.., 1] }), reduction: nn.Reduction.Sum);

        // the coefficients are the course's
        var total = lossObj.add(lossNoObj.mul(Scalars.OneHalf), Scalars.OneL).add(lossXy.add(lossWh, Scalars.OneL), Scalars.OneL).add(lossCls, Scalars.OneL);
        return new YoloLossTerms(lossObj, lossNoObj, lossXy, lossWh, lossCls, total, idx.shape[0]);
    }

    /// <summary>Predictions per image: K·(S1² + S2² + S3²).</summary>
    public long NumPredictions { get; }

    /// <summary>
    /// For each true box: its detection set (0 = coarsest) and anchor index within the set, per <see cref="Assignment"/>.
    /// boxes [B x M x 4] → (set [B x M], anchor [B x M]).
    /// </summary>
    public (Tensor set, Tensor anchor) AssignAnchors(Tensor boxes)
    {
        var flat = anchors.to(boxes.device).flatten(0, 1).div(imageSizeS);    // [D·K x 2]
        var wh = boxes[TensorIndex.Ellipsis, TensorIndex.Slice(2, 4)];         // [B x M x 2]
        var score = Assignment == AnchorAssignment.SizeIou
            ? BoxOps.SizeIou(wh, flat)                                         // [B x M x D·K]
            : minimum(wh.unsqueeze(-2), flat).prod(-1);                        // the course: intersection only
        var closest = score.argmax(-1);                                        // [B x M]
        return (closest.div(numAnchorsS, rounding_mode: RoundingMode.floor), closest.remainder(numAnchorsS));
    }

    /// <summary>
    /// Targets in the output layout: boxes [B x N x 4], labels [B x N] (-1 where no object) and the
    /// grid size S of each position [B x N] (for grid-cell units). Two boxes on one cell and anchor: the last wins.
    /// </summary>
    public (Tensor boxes, Tensor labels, Tensor cellScale) ConvertToYoloFormat(Tensor boxes, Tensor labels)
    {
        var dev = boxes.device;
        long b = labels.shape[0], n = NumPredictions;
        var sizes = set_size.to(dev);
        var outBoxes = zeros(b, n, 4, dtype: boxes.dtype, device: dev);
        var outLabels = full(b, n, Scalars.MinusOneL, dtype: int64, device: dev);
        var perSet = sizes.pow(Scalars.TwoL).mul(numAnchorsS);               // [D] S²·K
        var offsets = perSet.cumsum(0) - perSet;                               // [D] start of each set in N
        var cellScale = cell_scale.to(dev).to(boxes.dtype).unsqueeze(0).expand(b, n); // [B x N]

        var (set, anchor) = AssignAnchors(boxes);                              // [B x M]
        var s = sizes.index(set);                                              // [B x M]
        var sLast = s.sub(Scalars.OneL);                                        // [B x M] last cell index
        var cx = (boxes[TensorIndex.Ellipsis, 0] * s).floor().to(int64).clamp_min(Scalars.ZeroL).minimum(sLast);
        var cy = (boxes[TensorIndex.Ellipsis, 1] * s).floor().to(int64).clamp_min(Scalars.ZeroL).minimum(sLast);
        var pos = offsets.index(set).add((anchor * s).add(cy, Scalars.OneL).mul(s).add(cx, Scalars.OneL), Scalars.OneL);            // [B x M]
        var valid = labels.ge(Scalars.ZeroL);
        var where_ = valid.nonzero();                                          // [T x 2]
        var img = where_[.., 0];
        var p = pos.index(new[] { where_[.., 0], where_[.., 1] });
        outBoxes.index_put_(boxes.index(new[] { where_[.., 0], where_[.., 1] }), img, p);
        outLabels.index_put_(labels.index(new[] { where_[.., 0], where_[.., 1] }), img, p);
        return (outBoxes, outLabels, cellScale);
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) { ignoreIou.Dispose(); minWh.Dispose(); imageSizeS.Dispose(); numAnchorsS.Dispose(); }
        base.Dispose(disposing);
    }
}

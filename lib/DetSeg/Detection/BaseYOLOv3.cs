using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Detection;

/// <summary>
/// YOLOv3 without anchors: Darknet-53, three routes and three heads. Returns the raw detection sets
/// y1 (stride 32, large objects), y2 (stride 16), y3 (stride 8), each [B x (1 + 4 + C) x K x S x S].
/// </summary>
public sealed class BaseYOLOv3 : nn.Module<Tensor, (Tensor y1, Tensor y2, Tensor y3)>
{
    /// <summary>The feature extractor.</summary>
    public readonly Darknet53 backbone;
    /// <summary>Yolo block for the stride-32 route.</summary>
    public readonly YoloBlock route3;
    /// <summary>Head for the stride-32 set (y1).</summary>
    public readonly YoloHead head3;
    /// <summary>Upsampling route into stride 16.</summary>
    public readonly ConcatUnit concat2;
    /// <summary>Yolo block for the stride-16 route.</summary>
    public readonly YoloBlock route2;
    /// <summary>Head for the stride-16 set (y2).</summary>
    public readonly YoloHead head2;
    /// <summary>Upsampling route into stride 8.</summary>
    public readonly ConcatUnit concat1;
    /// <summary>Yolo block for the stride-8 route.</summary>
    public readonly YoloBlock route1;
    /// <summary>Head for the stride-8 set (y3).</summary>
    public readonly YoloHead head1;
    private readonly SpreadDim spreadDim;

    /// <summary>Input channels.</summary>
    public long InChannels { get; }
    /// <summary>Anchors per cell (K).</summary>
    public long NumAnchors { get; }
    /// <summary>Classes (C).</summary>
    public long NumClasses { get; }

    /// <summary>Builds the network (<paramref name="scale"/> null: the paper's full size).</summary>
    public BaseYOLOv3(long inChannels = 3, long numAnchors = 3, long numClasses = 80, ModelScale? scale = null)
        : base(nameof(BaseYOLOv3))
    {
        if (numAnchors < 1) throw new ArgumentException($"numAnchors must be ≥ 1, got {numAnchors}.", nameof(numAnchors));
        if (numClasses < 1) throw new ArgumentException($"numClasses must be ≥ 1, got {numClasses}.", nameof(numClasses));
        var s = scale ?? ModelScale.Full;
        InChannels = inChannels; NumAnchors = numAnchors; NumClasses = numClasses;
        backbone = new Darknet53(inChannels, s);
        var (c1, c2, c3) = backbone.RouteChannels;        // 256, 512, 1024 at full width
        route3 = new YoloBlock(c3, c3 / 2);                // 1024 -> 512
        head3 = new YoloHead(c3 / 2, c3, numAnchors, numClasses);
        concat2 = new ConcatUnit(c3 / 2);                  // 512 -> 256, + 512 skip = 768
        route2 = new YoloBlock(concat2.OutChannels + c2, c2 / 2);
        head2 = new YoloHead(c2 / 2, c2, numAnchors, numClasses);
        concat1 = new ConcatUnit(c2 / 2);                  // 256 -> 128, + 256 skip = 384
        route1 = new YoloBlock(concat1.OutChannels + c1, c1 / 2);
        head1 = new YoloHead(c1 / 2, c1, numAnchors, numClasses);
        spreadDim = new SpreadDim(new[] { 1 + 4 + numClasses, numAnchors }, dim: 1); // K explicit: K = 1 keeps its dim
        RegisterComponents();
    }

    /// <summary>
    /// The upsampling of both <see cref="ConcatUnit"/>s: bilinear (the course's default) or nearest (darknet's
    /// <c>[upsample]</c>, set by <see cref="DarknetWeights.Load"/> for the official weights).
    /// </summary>
    public InterpolationMode Upsampling
    {
        get => concat2.Mode;
        set { concat2.Mode = value; concat1.Mode = value; }
    }

    /// <summary>Every conv layer in darknet's file order, each with its BatchNorm (null for the three head output convs).</summary>
    public IEnumerable<(TorchSharp.Modules.Conv2d conv, Runtime.BatchNorm2d? bn)> DarknetLayers()
    {
        // yolov3.cfg order: backbone, then per scale: yolo block, head, (concat conv) — the course's module order.
        foreach (var b in backbone.Blocks()) yield return (b.conv, b.bn);
        foreach (var (block, head, concat) in new (YoloBlock, YoloHead, ConcatUnit?)[] { (route3, head3, null), (route2, head2, concat2), (route1, head1, concat1) })
        {
            if (concat is not null) yield return (concat.net.conv, concat.net.bn);
            foreach (var b in block.Blocks()) yield return (b.conv, b.bn);
            yield return (head.conv.conv, head.conv.bn);
            yield return (head.pred, null);
        }
    }

    /// <summary>[B x InChannels x H x W] (H, W multiples of 32) to the three raw detection sets.</summary>
    /// <exception cref="ArgumentException">Another shape or channel count, or a side that is not a multiple of 32; the message names the shape.</exception>
    public override (Tensor y1, Tensor y2, Tensor y3) forward(Tensor x)
    {
        if (x.dim() != 4 || x.shape[1] != InChannels)
            throw new ArgumentException($"BaseYOLOv3 expects [B x {InChannels} x H x W], got [{string.Join(", ", x.shape)}].", nameof(x));
        // Decoding places cell (i, j) of the S x S grid at stride side/S; with a side that is not 32·S the
        // three grids (e.g. 4/7/13 for 100 px) no longer share that stride and every box lands in the wrong place.
        if (x.shape[2] % 32 != 0 || x.shape[3] % 32 != 0)
            throw new ArgumentException($"BaseYOLOv3 needs H and W that are multiples of 32 (its strides 8/16/32), got [{string.Join(", ", x.shape)}]; letterbox or resize the image first.", nameof(x));
        var (r1, r2, r3) = backbone.call(x);
        r3 = route3.call(r3);
        r2 = route2.call(concat2.call(r3, r2));
        r1 = route1.call(concat1.call(r2, r1));
        var y1 = spreadDim.call(head3.call(r3));  // [B x (1+4+C) x K x S/32 x S/32] large receptive field
        var y2 = spreadDim.call(head2.call(r2));  // [B x (1+4+C) x K x S/16 x S/16]
        var y3 = spreadDim.call(head1.call(r1));  // [B x (1+4+C) x K x S/8 x S/8]   small receptive field
        return (y1, y2, y3);
    }
}

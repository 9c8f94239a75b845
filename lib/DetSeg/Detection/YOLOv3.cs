using DetSeg.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Detection;

/// <summary>
/// The YOLOv3 detector: <see cref="BaseYOLOv3"/> plus anchor priors (a buffer [3 x K x 2] in pixels
/// of the original 416 image, coarsest set first) and the decoding of raw outputs into boxes.
/// </summary>
/// <remarks>
/// <c>forward</c> returns (objectness logits [B x N], boxes [B x N x 4] normalized cx,cy,w,h,
/// class logits [B x N x C]) with N = K·(S1² + S2² + S3²) = 10,647 for 416 pixels;
/// <see cref="Detect"/> adds per-class NMS.
/// </remarks>
public sealed class YOLOv3 : nn.Module<Tensor, (Tensor scores, Tensor boxes, Tensor logits)>
{
    /// <summary>The image size the COCO priors were chosen for.</summary>
    public const int OriginalImageSize = 416;

    /// <summary>The paper's COCO anchor priors (w, h) in pixels at 416: y1 (large), y2, y3 (small).</summary>
    public static readonly float[,,] CocoAnchors =
    {
        { { 116, 90 }, { 156, 198 }, { 373, 326 } },
        { { 30, 61 }, { 62, 45 }, { 59, 119 } },
        { { 10, 13 }, { 16, 30 }, { 33, 23 } },
    };

    /// <summary>The network without anchors.</summary>
    public readonly BaseYOLOv3 yolo;
    /// <summary>Anchor priors [3 x K x 2] (w, h) in pixels; a buffer, so it is saved and follows <c>to(device)</c>.</summary>
    public readonly Tensor anchors;

    /// <summary>Input channels.</summary>
    public long InChannels => yolo.InChannels;
    /// <summary>Classes.</summary>
    public long NumClasses => yolo.NumClasses;
    /// <summary>The width/depth multipliers this model was built with.</summary>
    public ModelScale Scale { get; }

    /// <summary>Builds YOLOv3; <paramref name="anchorPriors"/> null means <see cref="CocoAnchors"/>.</summary>
    public YOLOv3(long inChannels = 3, long numClasses = 80, ModelScale? scale = null, Tensor? anchorPriors = null)
        : base(nameof(YOLOv3))
    {
        Scale = scale ?? ModelScale.Full;
        var a = anchorPriors is null ? tensor(CocoAnchors) : anchorPriors.detach().to(float32).cpu().clone();
        if (a.dim() != 3 || a.shape[0] != 3 || a.shape[2] != 2)
            throw new ArgumentException($"anchorPriors must be [3 x K x 2] (w, h) pixels, got [{string.Join(", ", a.shape)}].", nameof(anchorPriors));
        anchors = a;
        yolo = new BaseYOLOv3(inChannels, a.shape[1], numClasses, Scale);
        RegisterComponents();
    }

    /// <summary>The number format of the network's weights and activations (see <see cref="WithPrecision"/>).</summary>
    public Runtime.InferencePrecision Precision { get; private set; } = Runtime.InferencePrecision.Float32;

    /// <summary>
    /// Converts the network (not the anchor priors) to <paramref name="precision"/> for inference: <c>forward</c> then
    /// casts its input to it and its raw outputs back to float32 before decoding, so box arithmetic, NMS and the
    /// returned tensors stay float32. For inference only (optimizers and checkpoints expect float32); the weights' dropped
    /// bits are gone, so <see cref="Runtime.InferencePrecision.Float32"/> afterwards does not restore them: reload the
    /// weights to train or save. Returns this model.
    /// </summary>
    public YOLOv3 WithPrecision(Runtime.InferencePrecision precision)
    {
        // Below float32 every ConvBlock runs folded, folded from the float32 weights and statistics before they are
        // rounded (see ConvBlock.Fuse): one rounding instead of two, and the folded speed without a separate Fuse.
        if (precision != Runtime.InferencePrecision.Float32 && Precision == Runtime.InferencePrecision.Float32)
            foreach (var m in modules()) if (m is ConvBlock block) block.Fuse(precision.ToScalarType());
        yolo.to(precision.ToScalarType());
        Precision = precision;
        return this;
    }

    /// <summary>
    /// Folds every <see cref="ConvBlock"/>'s BatchNorm into its conv for eval-mode forwards (<see cref="ConvBlock.Fuse"/>;
    /// parameters and state_dict unchanged, training forwards unaffected). Call after loading weights. Below float32,
    /// <see cref="WithPrecision"/> has folded already (from the unrounded weights) and this does nothing. Returns this model.
    /// </summary>
    public YOLOv3 Fuse()
    {
        // Below float32 WithPrecision folded already, from the unrounded weights: refolding now would fold rounded ones.
        if (Precision != Runtime.InferencePrecision.Float32) return this;
        foreach (var m in modules()) if (m is ConvBlock block) block.Fuse();
        return this;
    }

    /// <summary>Drops the folded copies of <see cref="Fuse"/>. Returns this model.</summary>
    public YOLOv3 Unfuse()
    {
        foreach (var m in modules()) if (m is ConvBlock block) block.Unfuse();
        return this;
    }

    /// <inheritdoc/>
    public override (Tensor scores, Tensor boxes, Tensor logits) forward(Tensor x)
    {
        var (y1, y2, y3) = yolo.call(Precision == Runtime.InferencePrecision.Float32 ? x : x.to(Precision.ToScalarType()));
        if (Precision != Runtime.InferencePrecision.Float32)
            // decode in float32: bfloat16 steps 0.25 between 32 and 64, a quarter cell of the 52x52 grid
            (y1, y2, y3) = (y1.to(float32), y2.to(float32), y3.to(float32));
        long h = x.shape[2], w = x.shape[3];
        var (s1, b1, c1) = ToBoundingBoxes(y1, anchors[0], w, h);  // large boxes
        var (s2, b2, c2) = ToBoundingBoxes(y2, anchors[1], w, h);  // medium boxes
        var (s3, b3, c3) = ToBoundingBoxes(y3, anchors[2], w, h);  // small boxes
        return (cat(new[] { s1, s2, s3 }, 1),    // [B x N]
                cat(new[] { b1, b2, b3 }, 1),    // [B x N x 4]
                cat(new[] { c1, c2, c3 }, 1));   // [B x N x C]
    }

    /// <summary>
    /// Decodes one raw detection set [B x (1 + 4 + C) x K x Sy x Sx] with anchors [K x 2] (pixels):
    /// b_x = (σ(t_x) + c_x) / S_x, b_y likewise, b_w = exp(t_w)·p_w / width, b_h = exp(t_h)·p_h / height.
    /// Objectness and class values stay logits (the loss applies sigmoid/softmax).
    /// </summary>
    /// <returns>scores [B x K·Sy·Sx], boxes [B x K·Sy·Sx x 4] (cx, cy, w, h normalized), logits [B x K·Sy·Sx x C].</returns>
    public static (Tensor scores, Tensor boxes, Tensor logits) ToBoundingBoxes(Tensor detections, Tensor anchors, long width, long height)
    {
        if (detections.dim() != 5 || detections.shape[1] < 6 || detections.shape[2] != anchors.shape[0])
            throw new ArgumentException($"ToBoundingBoxes expects [B x (5 + C) x K x Sy x Sx] with K = {anchors.shape[0]}, got [{string.Join(", ", detections.shape)}].", nameof(detections));
        long c = detections.shape[1] - 5;
        var parts = detections.split(new long[] { 1, 1, 1, 1, 1, c }, dim: 1);
        var (score, tx, ty, tw, th, logits) = (parts[0], parts[1], parts[2], parts[3], parts[4], parts[5]);
        var scores = score.flatten(1);                                       // [B x (K·Sy·Sx)]

        long sy = detections.shape[3], sx = detections.shape[4];
        var dev = detections.device;
        // Runs in every forward: sizes as Scalars held until return (`using`), sums with a held alpha — temporary
        // Scalars can be freed mid-call by a GC on another thread (Runtime/Scalars).
        using Scalar syS = sy.ToScalar(), sxS = sx.ToScalar(), widthS = width.ToScalar(), heightS = height.ToScalar();
        var grid = meshgrid(new[] { arange(Runtime.Scalars.ZeroL, syS, Runtime.Scalars.OneL, dtype: detections.dtype, device: dev),
                                    arange(Runtime.Scalars.ZeroL, sxS, Runtime.Scalars.OneL, dtype: detections.dtype, device: dev) }, indexing: "ij");
        var (cy, cx) = (grid[0], grid[1]);                                   // [Sy x Sx]
        var a = anchors.to(detections.dtype).to(dev);
        var pw = a[.., 0].view(-1, 1, 1);                                    // [K x 1 x 1]
        var ph = a[.., 1].view(-1, 1, 1);
        var bx = tx.sigmoid().add(cx, Runtime.Scalars.OneL).div(sxS);      // [B x 1 x K x Sy x Sx]
        var by = ty.sigmoid().add(cy, Runtime.Scalars.OneL).div(syS);
        var bw = tw.exp() * pw.div(widthS);
        var bh = th.exp() * ph.div(heightS);
        var boxes = stack(new[] { bx, by, bw, bh }, dim: -1).flatten(1, -2); // [B x (K·Sy·Sx) x 4]
        var classLogits = logits.flatten(2).transpose(1, 2);                 // [B x (K·Sy·Sx) x C]
        return (scores, boxes, classLogits);
    }

    /// <summary>
    /// Detections after per-class NMS, sorted by adjusted score (max class probability × σ(objectness)),
    /// padded to the batch's largest count (score 0, box 0, label -1). Runs in eval mode without gradients
    /// and restores the previous mode (the course left the model in eval mode).
    /// </summary>
    /// <param name="x">Images [B x C x H x W].</param>
    /// <param name="iouThreshold">Boxes of one class overlapping a higher-scored kept box by more than this are dropped.</param>
    /// <param name="scoreThreshold">Adjusted scores at or below this are dropped before NMS (0 keeps all, as the course).</param>
    /// <param name="maxDetections">At most this many per image (highest scores); 0 means no limit.</param>
    public Detections Detect(Tensor x, double iouThreshold = 0.6, double scoreThreshold = 0.0, int maxDetections = 0)
    {
        bool wasTraining = training;
        eval();
        try
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            var (scores, boxes, logits) = forward(x);
            return Postprocess(scores, boxes, logits, iouThreshold, scoreThreshold, maxDetections).MoveToOuter();
        }
        finally { train(wasTraining); }
    }

    /// <summary>NMS on raw outputs (see <see cref="Detect"/>); public for custom decoders and tests.</summary>
    /// <param name="scores">Objectness logits [B x N].</param>
    /// <param name="boxes">Boxes [B x N x 4] (cx, cy, w, h).</param>
    /// <param name="logits">Class logits [B x N x C].</param>
    /// <param name="iouThreshold">Same-class boxes overlapping a kept one by more than this are dropped.</param>
    /// <param name="scoreThreshold">Candidates must score above this (objectness · class probability).</param>
    /// <param name="maxDetections">Most detections kept per image (0: all).</param>
    /// <param name="multiLabel">
    /// False (the course's): one candidate per prediction, its most likely class. True: one candidate per prediction
    /// and class scoring above <paramref name="scoreThreshold"/> (needs a threshold &gt; 0), so a box the model finds
    /// but hesitates to name — a 3 that may be a 5 — is also reported as its second class with its lower score. This is
    /// how YOLOv5/v8's validation computes mAP (<c>multi_label=True</c>); for display, keep the default.
    /// </param>
    public static Detections Postprocess(Tensor scores, Tensor boxes, Tensor logits, double iouThreshold = 0.6, double scoreThreshold = 0.0,
                                         int maxDetections = 0, bool multiLabel = false)
    {
        if (multiLabel && !(scoreThreshold > 0))
            throw new ArgumentOutOfRangeException(nameof(scoreThreshold), scoreThreshold, "multiLabel needs a score threshold > 0: every prediction would otherwise become one candidate per class.");
        Tensor adjusted, labels;
        var xyxy = BoxOps.CxCyWhToXyxy(boxes);
        if (multiLabel)
        {
            long b = logits.shape[0], n = logits.shape[1], c = logits.shape[2];
            adjusted = (logits.softmax(-1) * scores.sigmoid().unsqueeze(-1)).reshape(b, n * c);                 // [B x N·C]
            using Scalar classes = c.ToScalar();                                                              // held: runs per validation batch
            labels = arange(Runtime.Scalars.ZeroL, classes, Runtime.Scalars.OneL, dtype: int64, device: logits.device).repeat(n).unsqueeze(0).expand(b, n * c);  // [B x N·C]
            boxes = boxes.unsqueeze(2).expand(b, n, c, 4).reshape(b, n * c, 4);                               // [B x N·C x 4]
            xyxy = xyxy.unsqueeze(2).expand(b, n, c, 4).reshape(b, n * c, 4);                                 // converted once, then repeated
        }
        else
        {
            (var maxProbs, labels) = logits.softmax(-1).max(-1);            // [B x N], [B x N]
            adjusted = maxProbs * scores.sigmoid();                          // [B x N]
        }
        using Scalar threshold = scoreThreshold;                             // held: runs per validation batch (Runtime/Scalars)
        var valid = adjusted.gt(threshold);
        var keep = BatchedNms.Keep(xyxy, adjusted, labels, iouThreshold, valid);
        return Detections.FromKeep(adjusted, boxes, labels, keep, maxDetections);
    }
}

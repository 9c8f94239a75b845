using System.Globalization;
using System.Text;
using DetSeg.Metrics;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Detection;

/// <summary>
/// Detection evaluation exactly as pycocotools' <c>COCOeval</c> (<c>iouType='bbox'</c>): per image and class the
/// <see cref="MaxDetections"/> highest-scoring detections are matched greedily (each to the unmatched true box of
/// its image and class with the highest IoU ≥ t); per class, detections of all images sorted by score give
/// precision and recall; AP is the mean of the monotone precision envelope at COCO's 101 recall thresholds;
/// mAP@0.5:0.95 averages COCO's 10 IoU thresholds. Thresholds are numpy's <c>linspace</c> values (0.85,
/// 0.8999999999999999, recall 0.35000000000000003 …), not <c>0.5 + 0.05·i</c> or <c>r / 100</c>, so results on
/// an exact threshold agree with COCO. Classes without ground truth are excluded from the means (COCO's −1).
/// </summary>
/// <remarks>Accumulates on the host (a metric leaves the device once per batch); evaluation runs once and is
/// cached until the next <see cref="Update(Detections, Tensor, Tensor)"/> or <see cref="Reset"/>. Boxes are
/// normalized cx,cy,w,h; <see cref="ImageSize"/> turns them into pixels, which COCO's small/medium/large areas
/// (32², 96² pixels) need. Implements the trainer's <see cref="IMetricSet"/>: names <c>map50</c>, <c>map75</c>,
/// <c>map50_95</c>. <see cref="Summary"/> gives COCO's twelve <c>summarize()</c> numbers.</remarks>
public sealed class MeanAveragePrecision : IMetricSet
{
    readonly List<(float[] dets, float[] truth)> images = new();   // per image: (score, label, cx, cy, w, h)*, (label, cx, cy, w, h)*
    CocoEvaluation? standard;
    (double width, double height)? imageSize;

    /// <summary>Number of classes (labels 0..C-1).</summary>
    public int NumClasses { get; }
    /// <summary>Detections per image and class that count (COCO's largest maxDets, 100).</summary>
    public int MaxDetections { get; }
    /// <summary>COCO's maxDets for the recall summary: 1, 10 and <see cref="MaxDetections"/> (each capped at it).</summary>
    public IReadOnlyList<int> MaxDetsList => [Math.Min(1, MaxDetections), Math.Min(10, MaxDetections), MaxDetections];
    /// <summary>COCO's IoU thresholds: numpy's <c>linspace(0.5, 0.95, 10)</c>.</summary>
    public static IReadOnlyList<double> IouThresholds { get; } = CocoEvaluation.Linspace(0.5, 0.95, 10);
    /// <summary>COCO's recall thresholds: numpy's <c>linspace(0, 1, 101)</c>.</summary>
    public static IReadOnlyList<double> RecallThresholds { get; } = CocoEvaluation.RecallThresholds;

    /// <summary>
    /// Image width and height in pixels that the normalized boxes are scaled by before evaluation (null: boxes
    /// are used as given). IoUs hardly depend on it; COCO's area ranges for small/medium/large do.
    /// </summary>
    public (double width, double height)? ImageSize
    {
        get => imageSize;
        set
        {
            if (value is { } v && !(v.width > 0 && v.height > 0))
                throw new ArgumentException($"ImageSize must be positive, got ({v.width}, {v.height}).", nameof(value));
            imageSize = value; standard = null;
        }
    }

    /// <summary>Creates an empty evaluator.</summary>
    public MeanAveragePrecision(int numClasses, int maxDetections = 100)
    {
        if (numClasses < 1) throw new ArgumentException($"numClasses must be ≥ 1, got {numClasses}.", nameof(numClasses));
        if (maxDetections < 1) throw new ArgumentException($"maxDetections must be ≥ 1, got {maxDetections}.", nameof(maxDetections));
        NumClasses = numClasses; MaxDetections = maxDetections;
    }

    /// <summary>Images seen so far.</summary>
    public int NumImages => images.Count;

    /// <inheritdoc/>
    public void Reset() { images.Clear(); standard = null; }

    /// <summary>Adds a batch: detections (padded, label -1 ignored) and targets boxes [B x M x 4] (cx,cy,w,h), labels [B x M] (-1 = padding).</summary>
    public void Update(Detections detections, Tensor trueBoxes, Tensor trueLabels) =>
        Update(detections.Scores, detections.Boxes, detections.Labels, trueBoxes, trueLabels);

    /// <summary>Adds a batch of padded detections scores [B x D], boxes [B x D x 4], labels [B x D] and targets (all cx,cy,w,h).</summary>
    public void Update(Tensor scores, Tensor boxes, Tensor labels, Tensor trueBoxes, Tensor trueLabels)
    {
        long b = scores.shape[0];
        if (boxes.shape[0] != b || labels.shape[0] != b || trueBoxes.shape[0] != b || trueLabels.shape[0] != b)
            throw new ArgumentException($"Batch sizes differ: scores [{string.Join(", ", scores.shape)}], boxes [{string.Join(", ", boxes.shape)}], labels [{string.Join(", ", labels.shape)}], true boxes [{string.Join(", ", trueBoxes.shape)}], true labels [{string.Join(", ", trueLabels.shape)}].");
        long d = scores.dim() > 1 ? scores.shape[1] : 0, m = trueLabels.dim() > 1 ? trueLabels.shape[1] : 0;
        if (boxes.numel() != b * d * 4 || labels.numel() != b * d || trueBoxes.numel() != b * m * 4)
            throw new ArgumentException($"Expected boxes [{b} x {d} x 4], labels [{b} x {d}], true boxes [{b} x {m} x 4]; got [{string.Join(", ", boxes.shape)}], [{string.Join(", ", labels.shape)}], [{string.Join(", ", trueBoxes.shape)}].");
        float[] s = Floats(scores), bx = Floats(boxes), tb = Floats(trueBoxes);
        long[] l = Longs(labels), tl = Longs(trueLabels);
        var added = new List<(float[], float[])>((int)b);
        for (long i = 0; i < b; i++)
        {
            var dets = new List<float>();
            for (long j = 0; j < d; j++)
            {
                long k = i * d + j;
                if (l[k] < 0) continue;
                if (l[k] >= NumClasses) throw new ArgumentException($"Detection label {l[k]} is outside [0, {NumClasses}).", nameof(labels));
                dets.AddRange([s[k], l[k], bx[4 * k], bx[4 * k + 1], bx[4 * k + 2], bx[4 * k + 3]]);
            }
            var truth = new List<float>();
            for (long j = 0; j < m; j++)
            {
                long k = i * m + j;
                if (tl[k] < 0) continue;
                if (tl[k] >= NumClasses) throw new ArgumentException($"True label {tl[k]} is outside [0, {NumClasses}).", nameof(trueLabels));
                truth.AddRange([tl[k], tb[4 * k], tb[4 * k + 1], tb[4 * k + 2], tb[4 * k + 3]]);
            }
            added.Add((dets.ToArray(), truth.ToArray()));
        }
        images.AddRange(added);   // after validation: a bad batch adds nothing
        standard = null;
    }

    static float[] Floats(Tensor t) => t.numel() == 0 ? [] : t.detach().to(float32).cpu().contiguous().data<float>().ToArray();
    static long[] Longs(Tensor t) => t.numel() == 0 ? [] : t.detach().to(int64).cpu().contiguous().data<long>().ToArray();

    // cx,cy,w,h (float32) -> COCO's x,y,w,h in pixels (double)
    CocoBox ToCoco(float cx, float cy, float w, float h)
    {
        var (sx, sy) = imageSize ?? (1.0, 1.0);
        double pcx = cx * sx, pcy = cy * sy, pw = w * sx, ph = h * sy;
        return new CocoBox(pcx - pw / 2, pcy - ph / 2, pw, ph);
    }

    List<CocoImage> CocoImages() => images.Select(im =>
    {
        var (d, t) = im;
        var dets = new (double, int, CocoBox)[d.Length / 6];
        for (int j = 0; j < dets.Length; j++) dets[j] = (d[6 * j], (int)d[6 * j + 1], ToCoco(d[6 * j + 2], d[6 * j + 3], d[6 * j + 4], d[6 * j + 5]));
        var truth = new (int, CocoBox)[t.Length / 5];
        for (int j = 0; j < truth.Length; j++) truth[j] = ((int)t[5 * j], ToCoco(t[5 * j + 1], t[5 * j + 2], t[5 * j + 3], t[5 * j + 4]));
        return new CocoImage(dets, truth);
    }).ToList();

    CocoEvaluation Standard => standard ??= new CocoEvaluation(CocoImages(), NumClasses, [.. IouThresholds], [.. MaxDetsList]);

    // the standard evaluation when t is one of COCO's thresholds, else a one-threshold evaluation
    (CocoEvaluation ev, int t) At(double iouThreshold)
    {
        if (!(iouThreshold >= 0 && iouThreshold <= 1)) throw new ArgumentOutOfRangeException(nameof(iouThreshold), iouThreshold, "An IoU threshold lies in [0, 1].");
        int t = Array.IndexOf([.. IouThresholds], iouThreshold);
        return t >= 0 ? (Standard, t) : (new CocoEvaluation(CocoImages(), NumClasses, [iouThreshold], [.. MaxDetsList]), 0);
    }

    /// <summary>True boxes of class <paramref name="c"/>.</summary>
    public int NumTruth(int c) => images.Sum(im => Enumerable.Range(0, im.truth.Length / 5).Count(j => (int)im.truth[5 * j] == c));

    /// <summary>
    /// Recall and precision envelope of class <paramref name="c"/> along its score-sorted detections (all images,
    /// at most <see cref="MaxDetections"/> per image), at one IoU threshold: the curve COCO samples for AP.
    /// </summary>
    public (double[] recall, double[] precision) PrecisionRecall(int c, double iouThreshold = 0.5)
    {
        CheckClass(c);
        var (ev, t) = At(iouThreshold);
        return ev.Curve(c, t);
    }

    void CheckClass(int c)
    {
        if (c < 0 || c >= NumClasses) throw new ArgumentOutOfRangeException(nameof(c), c, $"A class lies in [0, {NumClasses}).");
    }

    /// <summary>COCO AP of class <paramref name="c"/> at one IoU threshold (all areas, <see cref="MaxDetections"/>): NaN when the class has no ground truth.</summary>
    public double AveragePrecision(int c, double iouThreshold)
    {
        CheckClass(c);
        var (ev, t) = At(iouThreshold);
        return ev.ClassAP(c, [t]);
    }

    /// <summary>Per-class AP at <paramref name="iouThreshold"/> (NaN for classes without ground truth).</summary>
    public double[] PerClassAP(double iouThreshold = 0.5)
    {
        var (ev, t) = At(iouThreshold);
        return Enumerable.Range(0, NumClasses).Select(c => ev.ClassAP(c, [t])).ToArray();
    }

    /// <summary>Per-class AP averaged over COCO's ten IoU thresholds (NaN for classes without ground truth).</summary>
    public double[] PerClassAP50To95() =>
        Enumerable.Range(0, NumClasses).Select(c => Standard.ClassAP(c, [.. Enumerable.Range(0, IouThresholds.Count)])).ToArray();

    /// <summary>Mean AP over classes with ground truth at one threshold (NaN when none has any); COCO's AP@t, summed as numpy does.</summary>
    public double MeanAP(double iouThreshold)
    {
        var (ev, t) = At(iouThreshold);
        double v = ev.Summarize(ap: true, ev.IouThresholds[t], "all", MaxDetections);
        return v == -1 ? double.NaN : v;
    }

    /// <summary>mAP@0.5 (COCO's AP50).</summary>
    public double Map50 => MeanAP(0.5);
    /// <summary>mAP@0.75 (COCO's AP75).</summary>
    public double Map75 => MeanAP(0.75);
    /// <summary>mAP@0.5:0.95, COCO's AP: the mean over the 10 thresholds and classes with ground truth (NaN when none has any).</summary>
    public double Map50To95
    {
        get
        {
            double v = Standard.Summarize(ap: true, null, "all", MaxDetections);
            return v == -1 ? double.NaN : v;
        }
    }

    /// <summary>
    /// COCO's twelve <c>summarize()</c> numbers, in its order and with its names: AP at IoU .50:.95, .50, .75;
    /// AP for small, medium, large areas; AR with 1, 10, 100 detections; AR for small, medium, large. As COCO,
    /// a value is −1 when nothing qualifies (no ground truth in that area range).
    /// </summary>
    public CocoSummary Summary()
    {
        var ev = Standard;
        int[] md = [.. MaxDetsList];
        int max = md[^1];
        var entries = new List<CocoSummary.Entry>();
        void Add(bool ap, double? iou, string area, int maxDets) =>
            entries.Add(new CocoSummary.Entry(ap, iou, area, maxDets, ev.Summarize(ap, iou, area, maxDets)));
        Add(true, null, "all", max);
        Add(true, 0.5, "all", max);
        Add(true, 0.75, "all", max);
        Add(true, null, "small", max);
        Add(true, null, "medium", max);
        Add(true, null, "large", max);
        Add(false, null, "all", md[0]);
        Add(false, null, "all", md[1]);
        Add(false, null, "all", max);
        Add(false, null, "small", max);
        Add(false, null, "medium", max);
        Add(false, null, "large", max);
        return new CocoSummary(entries);
    }

    /// <summary>
    /// Per-class true positives, false positives and missed boxes among the detections scoring above
    /// <paramref name="scoreThreshold"/>, matched as COCO (per image and class, best score first, IoU ≥ t).
    /// </summary>
    public (long[] tp, long[] fp, long[] fn) Counts(double iouThreshold = 0.5, double scoreThreshold = 0.5)
    {
        var (ev, t) = At(iouThreshold);
        var tp = new long[NumClasses]; var fp = new long[NumClasses]; var fn = new long[NumClasses];
        for (int c = 0; c < NumClasses; c++)
        {
            // greedy matching in score order: detections below the threshold never change the matches above it
            (tp[c], fp[c]) = ev.CountAbove(c, t, scoreThreshold);
            fn[c] = NumTruth(c) - tp[c];
        }
        return (tp, fp, fn);
    }

    /// <summary>Per-class precision TP/(TP+FP) and recall TP/(TP+FN) at the thresholds (NaN when undefined).</summary>
    public (double[] precision, double[] recall) PrecisionRecallAt(double iouThreshold = 0.5, double scoreThreshold = 0.5)
    {
        var (tp, fp, fn) = Counts(iouThreshold, scoreThreshold);
        return (tp.Select((t, c) => t + fp[c] > 0 ? (double)t / (t + fp[c]) : double.NaN).ToArray(),
                tp.Select((t, c) => t + fn[c] > 0 ? (double)t / (t + fn[c]) : double.NaN).ToArray());
    }

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, double> Values() => new Dictionary<string, double>
    {
        ["map50"] = Map50, ["map75"] = Map75, ["map50_95"] = Map50To95,
    };

    /// <summary>A per-class table: ground-truth count, AP@0.5, AP@0.5:0.95, then the means.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        sb.AppendLine("   Class   truth   AP@0.5  AP@.5:.95");
        sb.AppendLine(new string('-', 38));
        var ap50 = PerClassAP(0.5);
        var apAll = PerClassAP50To95();
        for (int c = 0; c < NumClasses; c++)
            sb.AppendLine(string.Format(ci, "{0,8} {1,7} {2,8:P1} {3,10:P1}", c, NumTruth(c), ap50[c], apAll[c]));
        sb.AppendLine(new string('-', 38));
        sb.Append(string.Format(ci, "{0,8} {1,7} {2,8:P1} {3,10:P1}", "mAP", images.Sum(i => i.truth.Length / 5), Map50, Map50To95));
        return sb.ToString();
    }

    /// <summary>
    /// One image's mistakes at <paramref name="iouThreshold"/>: for each detection (in the given order) whether it
    /// is a true positive (same class, unmatched true box with IoU ≥ t, best first by score), and for each true box
    /// whether it was found. Boxes are cx,cy,w,h arrays; for overlays.
    /// </summary>
    public static (bool[] detectionCorrect, bool[] truthFound) MatchImage(float[][] detBoxes, long[] detLabels, float[] detScores,
                                                                         float[][] trueBoxes, long[] trueLabels, double iouThreshold = 0.5)
    {
        static CocoBox ToBox(float[] b) => new((double)b[0] - (double)b[2] / 2, (double)b[1] - (double)b[3] / 2, b[2], b[3]);
        var correct = new bool[detBoxes.Length]; var found = new bool[trueBoxes.Length];
        foreach (int i in Enumerable.Range(0, detBoxes.Length).OrderByDescending(i => detScores[i]))
        {
            int best = -1; double bestIou = Math.Min(iouThreshold, 1 - 1e-10);
            for (int g = 0; g < trueBoxes.Length; g++)
            {
                if (found[g] || trueLabels[g] != detLabels[i]) continue;
                double iou = CocoBox.Iou(ToBox(detBoxes[i]), ToBox(trueBoxes[g]));
                if (iou < bestIou) continue;
                bestIou = iou; best = g;
            }
            if (best >= 0) { found[best] = true; correct[i] = true; }
        }
        return (correct, found);
    }
}

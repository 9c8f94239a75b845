using System.Globalization;
using System.Text;
using DetSeg.Metrics;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Detection;

/// <summary>
/// Detection evaluation with COCO's definitions: per class, detections of all images sorted by score are
/// matched greedily (each to the unmatched true box of its image with the highest IoU ≥ t); AP is the mean
/// of the monotone precision envelope at 101 recall points; mAP@0.5:0.95 averages 10 IoU thresholds;
/// classes without ground truth are excluded (no ground truth at all gives NaN). At most
/// <see cref="MaxDetections"/> detections per image (highest scores) count, as COCO's maxDets = 100.
/// </summary>
/// <remarks>Accumulates on the host (a metric leaves the device once per batch). Implements the trainer's
/// <see cref="IMetricSet"/>: names <c>map50</c>, <c>map75</c>, <c>map50_95</c>.</remarks>
public sealed class MeanAveragePrecision : IMetricSet
{
    readonly record struct Box(float X0, float Y0, float X1, float Y1);
    sealed record Image(List<(float score, long label, Box box)> Dets, List<(long label, Box box)> Truth);

    readonly List<Image> images = new();

    /// <summary>Number of classes (labels 0..C-1).</summary>
    public int NumClasses { get; }
    /// <summary>Detections per image that count (COCO: 100).</summary>
    public int MaxDetections { get; }
    /// <summary>COCO's IoU thresholds 0.50, 0.55, …, 0.95.</summary>
    public static IReadOnlyList<double> IouThresholds { get; } = Enumerable.Range(0, 10).Select(i => 0.5 + 0.05 * i).ToArray();

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
    public void Reset() => images.Clear();

    /// <summary>Adds a batch: detections (padded, label -1 ignored) and targets boxes [B x M x 4] (cx,cy,w,h), labels [B x M] (-1 = padding).</summary>
    public void Update(Detections detections, Tensor trueBoxes, Tensor trueLabels) =>
        Update(detections.Scores, detections.Boxes, detections.Labels, trueBoxes, trueLabels);

    /// <summary>Adds a batch of padded detections scores [B x D], boxes [B x D x 4], labels [B x D] and targets (all cx,cy,w,h).</summary>
    public void Update(Tensor scores, Tensor boxes, Tensor labels, Tensor trueBoxes, Tensor trueLabels)
    {
        long b = scores.shape[0];
        if (boxes.shape[0] != b || labels.shape[0] != b || trueBoxes.shape[0] != b || trueLabels.shape[0] != b)
            throw new ArgumentException($"Batch sizes differ: scores [{string.Join(", ", scores.shape)}], boxes [{string.Join(", ", boxes.shape)}], labels [{string.Join(", ", labels.shape)}], true boxes [{string.Join(", ", trueBoxes.shape)}], true labels [{string.Join(", ", trueLabels.shape)}].");
        float[] s = Floats(scores);
        float[] bx = Floats(BoxOps.CxCyWhToXyxy(boxes.detach().to(float32)));
        long[] l = Longs(labels);
        float[] tb = Floats(BoxOps.CxCyWhToXyxy(trueBoxes.detach().to(float32)));
        long[] tl = Longs(trueLabels);
        long d = scores.shape[1], m = trueLabels.shape[1];
        for (long i = 0; i < b; i++)
        {
            var dets = new List<(float, long, Box)>();
            for (long j = 0; j < d; j++)
            {
                long k = i * d + j;
                if (l[k] < 0) continue;
                if (l[k] >= NumClasses) throw new ArgumentException($"Detection label {l[k]} is outside [0, {NumClasses}).", nameof(labels));
                dets.Add((s[k], l[k], new Box(bx[4 * k], bx[4 * k + 1], bx[4 * k + 2], bx[4 * k + 3])));
            }
            dets = dets.OrderByDescending(t => t.Item1).Take(MaxDetections).ToList();
            var truth = new List<(long, Box)>();
            for (long j = 0; j < m; j++)
            {
                long k = i * m + j;
                if (tl[k] < 0) continue;
                if (tl[k] >= NumClasses) throw new ArgumentException($"True label {tl[k]} is outside [0, {NumClasses}).", nameof(trueLabels));
                truth.Add((tl[k], new Box(tb[4 * k], tb[4 * k + 1], tb[4 * k + 2], tb[4 * k + 3])));
            }
            images.Add(new Image(dets, truth));
        }
    }

    static float[] Floats(Tensor t) => t.numel() == 0 ? [] : t.detach().to(float32).cpu().contiguous().data<float>().ToArray();
    static long[] Longs(Tensor t) => t.numel() == 0 ? [] : t.detach().to(int64).cpu().contiguous().data<long>().ToArray();

    static double Iou(Box a, Box b)
    {
        double iw = Math.Max(0, Math.Min(a.X1, b.X1) - Math.Max(a.X0, b.X0));
        double ih = Math.Max(0, Math.Min(a.Y1, b.Y1) - Math.Max(a.Y0, b.Y0));
        double inter = iw * ih;
        double union = (a.X1 - a.X0) * (a.Y1 - a.Y0) + (b.X1 - b.X0) * (b.Y1 - b.Y0) - inter;
        return union > 0 ? inter / union : 0;
    }

    /// <summary>True boxes of class <paramref name="c"/>.</summary>
    public int NumTruth(int c) => images.Sum(im => im.Truth.Count(t => t.label == c));

    /// <summary>Sorted detections of one class with their TP flag at <paramref name="iouThreshold"/>, and the number of true boxes.</summary>
    (List<(float score, bool tp)> dets, int npos) MatchClass(int c, double iouThreshold, double minScore = double.NegativeInfinity)
    {
        var all = new List<(float score, int image, Box box, int order)>();
        int npos = 0, order = 0;
        for (int i = 0; i < images.Count; i++)
        {
            foreach (var (score, label, box) in images[i].Dets)
                if (label == c && score > minScore) all.Add((score, i, box, order++));
            npos += images[i].Truth.Count(t => t.label == c);
        }
        all.Sort((a, b) => a.score != b.score ? b.score.CompareTo(a.score) : a.order.CompareTo(b.order));
        var matched = new Dictionary<int, bool[]>();
        var result = new List<(float, bool)>(all.Count);
        foreach (var (score, image, box, _) in all)
        {
            var truth = images[image].Truth;
            if (!matched.TryGetValue(image, out var used)) matched[image] = used = new bool[truth.Count];
            int best = -1; double bestIou = Math.Min(iouThreshold, 1 - 1e-10);
            for (int g = 0; g < truth.Count; g++)
            {
                if (truth[g].label != c || used[g]) continue;
                double iou = Iou(box, truth[g].box);
                if (iou < bestIou) continue;
                bestIou = iou; best = g;
            }
            if (best >= 0) used[best] = true;
            result.Add((score, best >= 0));
        }
        return (result, npos);
    }

    /// <summary>Precision envelope and recall of one class at one IoU threshold (points in score order).</summary>
    public (double[] recall, double[] precision) PrecisionRecall(int c, double iouThreshold = 0.5)
    {
        var (dets, npos) = MatchClass(c, iouThreshold);
        var rc = new double[dets.Count]; var pr = new double[dets.Count];
        int tp = 0, fp = 0;
        for (int i = 0; i < dets.Count; i++)
        {
            if (dets[i].tp) tp++; else fp++;
            rc[i] = npos > 0 ? (double)tp / npos : 0;
            pr[i] = (double)tp / (tp + fp);
        }
        for (int i = pr.Length - 1; i > 0; i--) pr[i - 1] = Math.Max(pr[i - 1], pr[i]); // monotone envelope
        return (rc, pr);
    }

    /// <summary>COCO AP of class <paramref name="c"/> at one IoU threshold: NaN when the class has no ground truth.</summary>
    public double AveragePrecision(int c, double iouThreshold)
    {
        var (rc, pr) = PrecisionRecall(c, iouThreshold);
        if (NumTruth(c) == 0) return double.NaN;
        double sum = 0;
        for (int r = 0; r <= 100; r++)
        {
            double target = r / 100.0;
            int idx = Array.FindIndex(rc, v => v >= target);  // searchsorted(rc, target, 'left')
            if (idx >= 0) sum += pr[idx];
        }
        return sum / 101;
    }

    /// <summary>Per-class AP at <paramref name="iouThreshold"/> (NaN for classes without ground truth).</summary>
    public double[] PerClassAP(double iouThreshold = 0.5) => Enumerable.Range(0, NumClasses).Select(c => AveragePrecision(c, iouThreshold)).ToArray();

    /// <summary>Mean AP over classes with ground truth at one threshold (NaN when none has any).</summary>
    public double MeanAP(double iouThreshold)
    {
        var aps = PerClassAP(iouThreshold).Where(v => !double.IsNaN(v)).ToArray();
        return aps.Length == 0 ? double.NaN : aps.Average();
    }

    /// <summary>mAP@0.5.</summary>
    public double Map50 => MeanAP(0.5);
    /// <summary>mAP@0.75.</summary>
    public double Map75 => MeanAP(0.75);
    /// <summary>mAP@0.5:0.95 (mean over the 10 COCO thresholds).</summary>
    public double Map50To95
    {
        get
        {
            var per = IouThresholds.Select(MeanAP).ToArray();
            return per.Any(double.IsNaN) ? double.NaN : per.Average();
        }
    }

    /// <summary>Per-class true positives, false positives and missed boxes at an IoU and a score threshold.</summary>
    public (long[] tp, long[] fp, long[] fn) Counts(double iouThreshold = 0.5, double scoreThreshold = 0.5)
    {
        var tp = new long[NumClasses]; var fp = new long[NumClasses]; var fn = new long[NumClasses];
        for (int c = 0; c < NumClasses; c++)
        {
            var (dets, npos) = MatchClass(c, iouThreshold, scoreThreshold);
            tp[c] = dets.Count(d => d.tp); fp[c] = dets.Count - tp[c]; fn[c] = npos - tp[c];
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
        var apAll = Enumerable.Range(0, NumClasses).Select(c => IouThresholds.Select(t => AveragePrecision(c, t)).Average()).ToArray();
        for (int c = 0; c < NumClasses; c++)
            sb.AppendLine(string.Format(ci, "{0,8} {1,7} {2,8:P1} {3,10:P1}", c, NumTruth(c), ap50[c], apAll[c]));
        sb.AppendLine(new string('-', 38));
        sb.Append(string.Format(ci, "{0,8} {1,7} {2,8:P1} {3,10:P1}", "mAP", images.Sum(i => i.Truth.Count), Map50, Map50To95));
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
        static Box ToBox(float[] b) => new(b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2);
        var correct = new bool[detBoxes.Length]; var found = new bool[trueBoxes.Length];
        foreach (int i in Enumerable.Range(0, detBoxes.Length).OrderByDescending(i => detScores[i]))
        {
            int best = -1; double bestIou = iouThreshold;
            for (int g = 0; g < trueBoxes.Length; g++)
            {
                if (found[g] || trueLabels[g] != detLabels[i]) continue;
                double iou = Iou(ToBox(detBoxes[i]), ToBox(trueBoxes[g]));
                if (iou < bestIou) continue;
                bestIou = iou; best = g;
            }
            if (best >= 0) { found[best] = true; correct[i] = true; }
        }
        return (correct, found);
    }
}

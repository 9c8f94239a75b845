namespace DetSeg.Detection;

/// <summary>A box in COCO's layout: top-left corner, width and height (pixels, double).</summary>
internal readonly record struct CocoBox(double X, double Y, double W, double H)
{
    /// <summary>COCO's <c>area</c> of a box annotation and of a loaded bbox result: w·h.</summary>
    public double Area => W * H;

    /// <summary>pycocotools' <c>bbIou</c> (maskApi.c), non-crowd: the same operations in the same order, so ties fall alike.</summary>
    public static double Iou(CocoBox d, CocoBox g)
    {
        double w = Math.Min(d.W + d.X, g.W + g.X) - Math.Max(d.X, g.X);
        if (w <= 0) return 0;
        double h = Math.Min(d.H + d.Y, g.H + g.Y) - Math.Max(d.Y, g.Y);
        if (h <= 0) return 0;
        double i = w * h;
        return i / (d.Area + g.Area - i);
    }
}

/// <summary>One image: detections (score, class, box) and true boxes (class, box), each in insertion order.</summary>
internal sealed record CocoImage((double score, int label, CocoBox box)[] Dets, (int label, CocoBox box)[] Truth);

/// <summary>
/// pycocotools' <c>COCOeval</c> for <c>iouType='bbox'</c>: <c>evaluate</c> (per image and category:
/// the top <c>maxDets[-1]</c> detections by score, greedy matching at every IoU threshold, ignore flags
/// for the area range) and <c>accumulate</c> (per category, area range and maxDets: precision at the
/// recall thresholds after the monotone envelope, and the final recall; −1 where a category has no
/// ground truth). No crowd regions; every image is one COCO image, every class one category.
/// </summary>
internal sealed class CocoEvaluation
{
    /// <summary>numpy's <c>linspace(start, stop, num)</c> bit for bit: <c>i·step + start</c>, the last value exactly <c>stop</c>.</summary>
    public static double[] Linspace(double start, double stop, int num)
    {
        var y = new double[num];
        double step = (stop - start) / (num - 1);
        for (int i = 0; i < num; i++) y[i] = i * step + start;
        y[num - 1] = stop;
        return y;
    }

    /// <summary><c>np.spacing(1)</c>, which COCO adds to the precision's denominator.</summary>
    const double Eps = 2.220446049250313e-16;

    /// <summary>COCO's <c>params.areaRng</c>: all, small, medium, large (pixel areas, both ends inclusive).</summary>
    public static readonly (double lo, double hi)[] AreaRanges = [(0, 1e5 * 1e5), (0, 32 * 32), (32 * 32, 96 * 96), (96 * 96, 1e5 * 1e5)];
    /// <summary>Labels of <see cref="AreaRanges"/>.</summary>
    public static readonly string[] AreaLabels = ["all", "small", "medium", "large"];
    /// <summary>COCO's <c>params.recThrs</c> = linspace(0, 1, 101).</summary>
    public static readonly double[] RecallThresholds = Linspace(0, 1, 101);

    public double[] IouThresholds { get; }
    public int[] MaxDets { get; }
    public int NumClasses { get; }
    /// <summary>precision [T, R, K, A, M] flattened; −1 where a category has no ground truth in the area range.</summary>
    public double[] Precision { get; }
    /// <summary>recall [T, K, A, M] flattened; −1 likewise.</summary>
    public double[] Recall { get; }

    /// <summary>One image × category × area result of <c>evaluateImg</c> (null in COCO when neither boxes nor detections exist).</summary>
    sealed record ImageResult(double[] DtScores, bool[,] DtMatched, bool[,] DtIgnore, bool[] GtIgnore);

    readonly CocoImage[] images;
    // per class and threshold, at area "all" and the largest maxDets: the curve, and the sorted (score, tp, fp) flags
    readonly (double[] rc, double[] pr, (double score, bool tp, bool fp)[] dets)?[,] curves;

    public CocoEvaluation(IReadOnlyList<CocoImage> images, int numClasses, double[] iouThresholds, int[] maxDets)
    {
        this.images = images.ToArray();
        NumClasses = numClasses;
        IouThresholds = iouThresholds;
        MaxDets = maxDets.Order().ToArray();
        int T = IouThresholds.Length, R = RecallThresholds.Length, K = numClasses, A = AreaRanges.Length, M = MaxDets.Length;
        Precision = Enumerable.Repeat(-1.0, T * R * K * A * M).ToArray();
        Recall = Enumerable.Repeat(-1.0, T * K * A * M).ToArray();
        curves = new (double[], double[], (double, bool, bool)[])?[K, T];
        for (int k = 0; k < K; k++)
        {
            var perImage = new (CocoBox[] dts, double[] scores, CocoBox[] gts, double[,] ious)?[this.images.Length];
            for (int i = 0; i < this.images.Length; i++) perImage[i] = Prepare(this.images[i], k);
            for (int a = 0; a < A; a++)
            {
                var results = new List<ImageResult>();
                foreach (var p in perImage)
                    if (p is { } q) results.Add(EvaluateImg(q.dts, q.scores, q.gts, q.ious, AreaRanges[a]));
                Accumulate(results, k, a);
            }
        }
    }

    public int PrecisionIndex(int t, int r, int k, int a, int m) =>
        (((t * RecallThresholds.Length + r) * NumClasses + k) * AreaRanges.Length + a) * MaxDets.Length + m;

    public int RecallIndex(int t, int k, int a, int m) => ((t * NumClasses + k) * AreaRanges.Length + a) * MaxDets.Length + m;

    // computeIoU: detections of one category sorted by score (stable, as mergesort), cut at maxDets[-1].
    (CocoBox[] dts, double[] scores, CocoBox[] gts, double[,] ious)? Prepare(CocoImage image, int k)
    {
        var gts = image.Truth.Where(t => t.label == k).Select(t => t.box).ToArray();
        var dets = image.Dets.Where(d => d.label == k).OrderByDescending(d => d.score).Take(MaxDets[^1]).ToArray();
        if (gts.Length == 0 && dets.Length == 0) return null;
        var ious = new double[dets.Length, gts.Length];
        for (int d = 0; d < dets.Length; d++)
            for (int g = 0; g < gts.Length; g++) ious[d, g] = CocoBox.Iou(dets[d].box, gts[g]);
        return (dets.Select(d => d.box).ToArray(), dets.Select(d => d.score).ToArray(), gts, ious);
    }

    ImageResult EvaluateImg(CocoBox[] dts, double[] scores, CocoBox[] gtsIn, double[,] iousIn, (double lo, double hi) rng)
    {
        bool Outside(CocoBox b) => b.Area < rng.lo || b.Area > rng.hi;
        // true boxes outside the area range are ignored and go last (stable), as COCO's gtind
        int[] gtind = Enumerable.Range(0, gtsIn.Length).OrderBy(g => Outside(gtsIn[g]) ? 1 : 0).ToArray();
        bool[] gtIg = gtind.Select(g => Outside(gtsIn[g])).ToArray();
        int T = IouThresholds.Length, G = gtind.Length, D = dts.Length;
        var gtMatched = new bool[T, G];
        var dtMatched = new bool[T, D];
        var dtIg = new bool[T, D];
        if (G > 0 && D > 0)   // COCO skips matching when the IoU list is empty
            for (int t = 0; t < T; t++)
                for (int d = 0; d < D; d++)
                {
                    double iou = Math.Min(IouThresholds[t], 1 - 1e-10);
                    int m = -1;
                    for (int g = 0; g < G; g++)
                    {
                        if (gtMatched[t, g]) continue;
                        if (m > -1 && !gtIg[m] && gtIg[g]) break;   // matched a regular box; only ignored ones remain
                        double v = iousIn[d, gtind[g]];
                        if (v < iou) continue;
                        iou = v; m = g;
                    }
                    if (m == -1) continue;
                    dtIg[t, d] = gtIg[m];
                    dtMatched[t, d] = true;
                    gtMatched[t, m] = true;
                }
        for (int d = 0; d < D; d++)
            if (Outside(dts[d]))
                for (int t = 0; t < T; t++) if (!dtMatched[t, d]) dtIg[t, d] = true;
        return new ImageResult(scores, dtMatched, dtIg, gtIg);
    }

    void Accumulate(List<ImageResult> results, int k, int a)
    {
        if (results.Count == 0) return;
        int T = IouThresholds.Length, R = RecallThresholds.Length;
        int npig = results.Sum(e => e.GtIgnore.Count(ig => !ig));   // COCO stops here when 0; the flags still serve Counts
        for (int m = 0; m < MaxDets.Length; m++)
        {
            int maxDet = MaxDets[m];
            // concatenation over images of each one's first maxDet detections, then a stable sort by score
            var entries = new List<(double score, ImageResult e, int d)>();
            foreach (var e in results)
                for (int d = 0; d < Math.Min(maxDet, e.DtScores.Length); d++) entries.Add((e.DtScores[d], e, d));
            var sorted = entries.OrderByDescending(x => x.score).ToArray();
            int nd = sorted.Length;
            for (int t = 0; t < T; t++)
            {
                var rc = new double[nd]; var pr = new double[nd];
                var flags = new (double, bool, bool)[nd];
                double tp = 0, fp = 0;
                for (int i = 0; i < nd; i++)
                {
                    var (score, e, d) = sorted[i];
                    bool ig = e.DtIgnore[t, d], matched = e.DtMatched[t, d];
                    if (matched && !ig) tp++;
                    if (!matched && !ig) fp++;
                    flags[i] = (score, matched && !ig, !matched && !ig);
                    rc[i] = tp / npig;
                    pr[i] = tp / (fp + tp + Eps);
                }
                if (npig == 0)
                {
                    if (a == 0 && m == MaxDets.Length - 1) curves[k, t] = ([], [], flags);
                    continue;
                }
                Recall[RecallIndex(t, k, a, m)] = nd > 0 ? rc[^1] : 0;
                for (int i = nd - 1; i > 0; i--)
                    if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
                // np.searchsorted(rc, recThrs, 'left'); thresholds past the last recall keep precision 0
                int pi = 0;
                for (int r = 0; r < R; r++)
                {
                    while (pi < nd && rc[pi] < RecallThresholds[r]) pi++;
                    Precision[PrecisionIndex(t, r, k, a, m)] = pi < nd ? pr[pi] : 0;
                }
                if (a == 0 && m == MaxDets.Length - 1) curves[k, t] = (rc, pr, flags);
            }
        }
    }

    /// <summary>Recall and precision envelope of class <paramref name="k"/> at threshold index <paramref name="t"/> (area all, largest maxDets); empty without ground truth.</summary>
    public (double[] recall, double[] precision) Curve(int k, int t) =>
        curves[k, t] is { } c ? ((double[])c.rc.Clone(), (double[])c.pr.Clone()) : ([], []);   // no ground truth: rc, pr are empty

    /// <summary>AP of class <paramref name="k"/>: the mean precision over thresholds <paramref name="ts"/> and all recall thresholds (area all, largest maxDets); NaN without ground truth.</summary>
    public double ClassAP(int k, int[] ts)
    {
        int m = MaxDets.Length - 1;
        if (Precision[PrecisionIndex(ts[0], 0, k, 0, m)] == -1) return double.NaN;
        double sum = 0;
        foreach (int t in ts)
            for (int r = 0; r < RecallThresholds.Length; r++) sum += Precision[PrecisionIndex(t, r, k, 0, m)];
        return sum / (ts.Length * RecallThresholds.Length);
    }

    /// <summary>True and false positives of class <paramref name="k"/> at threshold index <paramref name="t"/> among detections scoring above <paramref name="minScore"/>.</summary>
    public (long tp, long fp) CountAbove(int k, int t, double minScore)
    {
        long tp = 0, fp = 0;
        if (curves[k, t] is { } c)
            foreach (var (score, isTp, isFp) in c.dets)
                if (score > minScore) { if (isTp) tp++; if (isFp) fp++; }
        return (tp, fp);
    }

    /// <summary>
    /// COCO's <c>_summarize</c>: the mean of the entries &gt; −1 of precision (AP) or recall (AR) at one IoU
    /// threshold (null: all), one area label and one maxDets value; −1 when there is none.
    /// </summary>
    public double Summarize(bool ap, double? iouThreshold, string area, int maxDets)
    {
        int a = Array.IndexOf(AreaLabels, area), m = Array.IndexOf(MaxDets, maxDets);
        if (a < 0 || m < 0) return -1;
        var ts = iouThreshold is { } thr ? Enumerable.Range(0, IouThresholds.Length).Where(t => IouThresholds[t] == thr) : Enumerable.Range(0, IouThresholds.Length);
        // numpy's C order of s[t, r, k] (AP) or s[t, k] (AR), so that the sum below adds in numpy's order
        var values = new List<double>();
        foreach (int t in ts)
            if (ap)
                for (int r = 0; r < RecallThresholds.Length; r++)
                    for (int k = 0; k < NumClasses; k++) values.Add(Precision[PrecisionIndex(t, r, k, a, m)]);
            else
                for (int k = 0; k < NumClasses; k++) values.Add(Recall[RecallIndex(t, k, a, m)]);
        var kept = values.Where(v => v > -1).ToArray();
        return kept.Length == 0 ? -1 : NumpyMean(kept);
    }

    /// <summary>
    /// <c>np.mean</c> of a float64 vector bit for bit: numpy adds buffers of 8192 values, each by pairwise summation
    /// (8 accumulators up to 128 values). Summing in another order moves the last bit, and a mean on a printed
    /// tie (0.2875) would then print differently from COCO's <c>{:0.3f}</c>.
    /// </summary>
    internal static double NumpyMean(double[] a)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i += 8192) sum += PairwiseSum(a, i, Math.Min(8192, a.Length - i));
        return sum / a.Length;
    }

    static double PairwiseSum(double[] a, int lo, int n)
    {
        if (n < 8)
        {
            double res = 0;
            for (int i = 0; i < n; i++) res += a[lo + i];
            return res;
        }
        if (n <= 128)
        {
            var r = new double[8];
            for (int j = 0; j < 8; j++) r[j] = a[lo + j];
            int i = 8;
            for (; i < n - n % 8; i += 8)
                for (int j = 0; j < 8; j++) r[j] += a[lo + i + j];
            double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
            for (; i < n; i++) res += a[lo + i];
            return res;
        }
        int n2 = n / 2;
        n2 -= n2 % 8;
        return PairwiseSum(a, lo, n2) + PairwiseSum(a, lo + n2, n - n2);
    }
}

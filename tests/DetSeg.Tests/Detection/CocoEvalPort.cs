namespace DetSeg.Tests.Detection;

/// <summary>
/// A literal, line-by-line port of pycocotools' <c>COCOeval</c> for <c>iouType='bbox'</c> (cocodataset/cocoapi,
/// PythonAPI/pycocotools/cocoeval.py: <c>Params.setDetParams</c>, <c>_prepare</c>, <c>computeIoU</c>,
/// <c>evaluateImg</c>, <c>accumulate</c>, <c>summarize</c>; <c>bbIou</c> from common/maskApi.c). It shares no
/// code with DetSeg and is the reference the <c>MeanAveragePrecision</c> tests compare against. Python
/// names are kept; comments quote the Python where the port is not obvious.
/// </summary>
public sealed class CocoEvalPort
{
    public sealed class Ann
    {
        public int id, image_id, category_id, iscrowd;
        public double[] bbox = new double[4];   // x, y, w, h
        public double area, score;
        public int _ignore;
    }

    public sealed class Params
    {
        public int[] imgIds = [], catIds = [];
        public double[] iouThrs = Linspace(.5, 0.95, (int)Math.Round((0.95 - .5) / .05) + 1);
        public double[] recThrs = Linspace(.0, 1.00, (int)Math.Round((1.00 - .0) / .01) + 1);
        public int[] maxDets = [1, 10, 100];
        public double[][] areaRng = [[0 * 0, 1e5 * 1e5], [0 * 0, 32 * 32], [32 * 32, 96 * 96], [96 * 96, 1e5 * 1e5]];
        public string[] areaRngLbl = ["all", "small", "medium", "large"];
    }

    // numpy.linspace (numpy/core/function_base.py): y = arange(0, num) * step + start; y[-1] = stop
    public static double[] Linspace(double start, double stop, int num)
    {
        int div = num - 1;
        double delta = stop - start;
        double step = delta / div;
        var y = new double[num];
        for (int i = 0; i < num; i++) { y[i] = i; y[i] = y[i] * step; y[i] += start; }
        y[num - 1] = stop;
        return y;
    }

    public sealed class EvalImg
    {
        public int image_id, category_id, maxDet;
        public double[] aRng = [];
        public int[] dtIds = [], gtIds = [];
        public double[,] dtMatches = new double[0, 0], gtMatches = new double[0, 0];
        public double[] dtScores = [];
        public bool[] gtIgnore = [];
        public bool[,] dtIgnore = new bool[0, 0];
    }

    public readonly Params p = new();
    readonly List<Ann> gtsAll, dtsAll;
    readonly Dictionary<(int, int), List<Ann>> _gts = new(), _dts = new();
    readonly Dictionary<(int, int), double[,]> ious = new();
    List<EvalImg?> evalImgs = new();
    public double[,,,,] precision = new double[0, 0, 0, 0, 0];
    public double[,,,] recall = new double[0, 0, 0, 0];
    public double[] stats = [];

    /// <summary>gts and dts as COCO holds them after loading: ids from 1, area given (results: w·h), iscrowd 0.</summary>
    public CocoEvalPort(List<Ann> gts, List<Ann> dts, int[] imgIds, int[] catIds, int maxDetsLast = 100)
    {
        gtsAll = gts; dtsAll = dts;
        p.imgIds = imgIds.Distinct().Order().ToArray();     // sorted(cocoGt.getImgIds()), then np.unique
        p.catIds = catIds.Distinct().Order().ToArray();
        p.maxDets = [1, 10, maxDetsLast];
    }

    List<Ann> Get(Dictionary<(int, int), List<Ann>> d, int img, int cat) => d.TryGetValue((img, cat), out var l) ? l : [];

    void _prepare()
    {
        foreach (var gt in gtsAll) gt._ignore = 0;            // gt['ignore'] = 'iscrowd' in gt and gt['iscrowd']
        foreach (var gt in gtsAll) { if (!_gts.ContainsKey((gt.image_id, gt.category_id))) _gts[(gt.image_id, gt.category_id)] = new(); _gts[(gt.image_id, gt.category_id)].Add(gt); }
        foreach (var dt in dtsAll) { if (!_dts.ContainsKey((dt.image_id, dt.category_id))) _dts[(dt.image_id, dt.category_id)] = new(); _dts[(dt.image_id, dt.category_id)].Add(dt); }
    }

    public void evaluate()
    {
        p.maxDets = p.maxDets.Order().ToArray();
        _prepare();
        foreach (int imgId in p.imgIds)
            foreach (int catId in p.catIds)
                ious[(imgId, catId)] = computeIoU(imgId, catId);
        int maxDet = p.maxDets[^1];
        evalImgs = new();
        foreach (int catId in p.catIds)
            foreach (var areaRng in p.areaRng)
                foreach (int imgId in p.imgIds)
                    evalImgs.Add(evaluateImg(imgId, catId, areaRng, maxDet));
    }

    // np.argsort(keys, kind='mergesort'): a stable sort
    static int[] ArgsortStable(double[] keys) => Enumerable.Range(0, keys.Length).OrderBy(i => keys[i]).ToArray();

    double[,] computeIoU(int imgId, int catId)
    {
        var gt = Get(_gts, imgId, catId);
        var dt = Get(_dts, imgId, catId);
        if (gt.Count == 0 && dt.Count == 0) return new double[0, 0];
        var inds = ArgsortStable(dt.Select(d => -d.score).ToArray());
        dt = inds.Select(i => dt[i]).ToList();
        if (dt.Count > p.maxDets[^1]) dt = dt.Take(p.maxDets[^1]).ToList();
        return maskUtils_iou(dt.Select(d => d.bbox).ToList(), gt.Select(g => g.bbox).ToList(), gt.Select(o => o.iscrowd).ToArray());
    }

    // _mask.pyx iou(): [] when either list is empty, else bbIou (maskApi.c) as a D x G matrix
    static double[,] maskUtils_iou(List<double[]> dt, List<double[]> gt, int[] iscrowd)
    {
        if (dt.Count == 0 || gt.Count == 0) return new double[0, 0];
        int m = dt.Count, n = gt.Count;
        var o = new double[m, n];
        for (int g = 0; g < n; g++)
        {
            var G = gt[g]; double ga = G[2] * G[3]; bool crowd = iscrowd[g] != 0;
            for (int d = 0; d < m; d++)
            {
                var D = dt[d]; double da = D[2] * D[3]; o[d, g] = 0;
                double w = Math.Min(D[2] + D[0], G[2] + G[0]) - Math.Max(D[0], G[0]); if (w <= 0) continue;
                double h = Math.Min(D[3] + D[1], G[3] + G[1]) - Math.Max(D[1], G[1]); if (h <= 0) continue;
                double i = w * h; double u = crowd ? da : da + ga - i; o[d, g] = i / u;
            }
        }
        return o;
    }

    EvalImg? evaluateImg(int imgId, int catId, double[] aRng, int maxDet)
    {
        var gt = Get(_gts, imgId, catId);
        var dt = Get(_dts, imgId, catId);
        if (gt.Count == 0 && dt.Count == 0) return null;
        foreach (var g in gt)
            g._ignore = (g.iscrowd != 0 || g.area < aRng[0] || g.area > aRng[1]) ? 1 : 0;

        // sort dt highest score first, sort gt ignore last
        var gtind = ArgsortStable(gt.Select(g => (double)g._ignore).ToArray());
        gt = gtind.Select(i => gt[i]).ToList();
        var dtind = ArgsortStable(dt.Select(d => -d.score).ToArray());
        dt = dtind.Take(maxDet).Select(i => dt[i]).ToList();
        var iscrowd = gt.Select(o => o.iscrowd).ToArray();
        // ious = self.ious[imgId, catId][:, gtind] if len(...) > 0
        var raw = ious[(imgId, catId)];
        bool haveIous = raw.Length > 0;

        int T = p.iouThrs.Length, G = gt.Count, D = dt.Count;
        var gtm = new double[T, G];
        var dtm = new double[T, D];
        var gtIg = gt.Select(g => g._ignore != 0).ToArray();
        var dtIg = new bool[T, D];
        if (haveIous)
            for (int tind = 0; tind < T; tind++)
            {
                double t = p.iouThrs[tind];
                for (int dind = 0; dind < D; dind++)
                {
                    var d = dt[dind];
                    double iou = Math.Min(t, 1 - 1e-10);
                    int m = -1;
                    for (int gind = 0; gind < G; gind++)
                    {
                        if (gtm[tind, gind] > 0 && iscrowd[gind] == 0) continue;
                        if (m > -1 && !gtIg[m] && gtIg[gind]) break;
                        if (raw[dind, gtind[gind]] < iou) continue;
                        iou = raw[dind, gtind[gind]];
                        m = gind;
                    }
                    if (m == -1) continue;
                    dtIg[tind, dind] = gtIg[m];
                    dtm[tind, dind] = gt[m].id;
                    gtm[tind, m] = d.id;
                }
            }
        // set unmatched detections outside of area range to ignore
        var a = dt.Select(d => d.area < aRng[0] || d.area > aRng[1]).ToArray();
        for (int tind = 0; tind < T; tind++)
            for (int dind = 0; dind < D; dind++)
                dtIg[tind, dind] = dtIg[tind, dind] || (dtm[tind, dind] == 0 && a[dind]);
        return new EvalImg
        {
            image_id = imgId, category_id = catId, aRng = aRng, maxDet = maxDet,
            dtIds = dt.Select(d => d.id).ToArray(), gtIds = gt.Select(g => g.id).ToArray(),
            dtMatches = dtm, gtMatches = gtm, dtScores = dt.Select(d => d.score).ToArray(),
            gtIgnore = gtIg, dtIgnore = dtIg,
        };
    }

    public void accumulate()
    {
        int T = p.iouThrs.Length, R = p.recThrs.Length, K = p.catIds.Length, A = p.areaRng.Length, M = p.maxDets.Length;
        precision = new double[T, R, K, A, M];
        recall = new double[T, K, A, M];
        foreach (var idx in Indices(precision)) precision.SetValue(-1.0, idx);
        foreach (var idx in Indices(recall)) recall.SetValue(-1.0, idx);
        int I0 = p.imgIds.Length, A0 = p.areaRng.Length;
        for (int k = 0; k < K; k++)
        {
            int Nk = k * A0 * I0;
            for (int a = 0; a < A; a++)
            {
                int Na = a * I0;
                for (int m = 0; m < M; m++)
                {
                    int maxDet = p.maxDets[m];
                    var E = Enumerable.Range(0, I0).Select(i => evalImgs[Nk + Na + i]).Where(e => e is not null).Select(e => e!).ToList();
                    if (E.Count == 0) continue;
                    // dtScores = np.concatenate([e['dtScores'][0:maxDet] for e in E])
                    var cols = new List<(EvalImg e, int d)>();
                    foreach (var e in E) for (int d = 0; d < Math.Min(maxDet, e.dtScores.Length); d++) cols.Add((e, d));
                    var dtScores = cols.Select(c => c.e.dtScores[c.d]).ToArray();
                    var inds = ArgsortStable(dtScores.Select(s => -s).ToArray());
                    int nd = inds.Length;
                    var gtIg = E.SelectMany(e => e.gtIgnore).ToArray();
                    int npig = gtIg.Count(g => !g);
                    if (npig == 0) continue;
                    for (int t = 0; t < T; t++)
                    {
                        // tps = dtm & ~dtIg, fps = ~dtm & ~dtIg; cumsum as float
                        var tp = new double[nd]; var fp = new double[nd];
                        double tpc = 0, fpc = 0;
                        for (int j = 0; j < nd; j++)
                        {
                            var (e, d) = cols[inds[j]];
                            bool dtmv = e.dtMatches[t, d] != 0, dtIgv = e.dtIgnore[t, d];
                            if (dtmv && !dtIgv) tpc += 1;
                            if (!dtmv && !dtIgv) fpc += 1;
                            tp[j] = tpc; fp[j] = fpc;
                        }
                        var rc = tp.Select(v => v / npig).ToArray();
                        var pr = tp.Select((v, j) => v / (fp[j] + v + 2.220446049250313e-16)).ToArray();   // np.spacing(1)
                        var q = new double[R];
                        recall[t, k, a, m] = nd > 0 ? rc[^1] : 0;
                        for (int i = nd - 1; i > 0; i--)
                            if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
                        var sinds = p.recThrs.Select(x => SearchSortedLeft(rc, x)).ToArray();
                        // try: for ri, pi in enumerate(inds): q[ri] = pr[pi]  except: pass
                        for (int ri = 0; ri < sinds.Length; ri++)
                        {
                            if (sinds[ri] >= pr.Length) break;
                            q[ri] = pr[sinds[ri]];
                        }
                        for (int r = 0; r < R; r++) precision[t, r, k, a, m] = q[r];
                    }
                }
            }
        }
    }

    // np.searchsorted(a, v, side='left'): the first index i with a[i] >= v (a is non-decreasing)
    static int SearchSortedLeft(double[] a, double v)
    {
        int lo = 0, hi = a.Length;
        while (lo < hi) { int mid = (lo + hi) / 2; if (a[mid] < v) lo = mid + 1; else hi = mid; }
        return lo;
    }

    static IEnumerable<int[]> Indices(Array arr)
    {
        int rank = arr.Rank; var idx = new int[rank];
        if (arr.Length == 0) yield break;
        while (true)
        {
            yield return (int[])idx.Clone();
            int dim = rank - 1;
            while (dim >= 0 && ++idx[dim] == arr.GetLength(dim)) { idx[dim] = 0; dim--; }
            if (dim < 0) yield break;
        }
    }

    double _summarize(int ap, double? iouThr = null, string areaRng = "all", int maxDets = 100)
    {
        var aind = Enumerable.Range(0, p.areaRngLbl.Length).Where(i => p.areaRngLbl[i] == areaRng).ToArray();
        var mind = Enumerable.Range(0, p.maxDets.Length).Where(i => p.maxDets[i] == maxDets).ToArray();
        var tsel = Enumerable.Range(0, p.iouThrs.Length).Where(t => iouThr is null || p.iouThrs[t] == iouThr).ToArray();
        var s = new List<double>();
        if (ap == 1)
        {
            foreach (int t in tsel) for (int r = 0; r < p.recThrs.Length; r++) for (int k = 0; k < p.catIds.Length; k++)
                foreach (int a in aind) foreach (int m in mind) s.Add(precision[t, r, k, a, m]);
        }
        else
        {
            foreach (int t in tsel) for (int k = 0; k < p.catIds.Length; k++)
                foreach (int a in aind) foreach (int m in mind) s.Add(recall[t, k, a, m]);
        }
        var kept = s.Where(v => v > -1).ToArray();
        return kept.Length == 0 ? -1 : kept.Average();
    }

    public void summarize()
    {
        stats = new double[12];
        stats[0] = _summarize(1);
        stats[1] = _summarize(1, iouThr: .5, maxDets: p.maxDets[2]);
        stats[2] = _summarize(1, iouThr: .75, maxDets: p.maxDets[2]);
        stats[3] = _summarize(1, areaRng: "small", maxDets: p.maxDets[2]);
        stats[4] = _summarize(1, areaRng: "medium", maxDets: p.maxDets[2]);
        stats[5] = _summarize(1, areaRng: "large", maxDets: p.maxDets[2]);
        stats[6] = _summarize(0, maxDets: p.maxDets[0]);
        stats[7] = _summarize(0, maxDets: p.maxDets[1]);
        stats[8] = _summarize(0, maxDets: p.maxDets[2]);
        stats[9] = _summarize(0, areaRng: "small", maxDets: p.maxDets[2]);
        stats[10] = _summarize(0, areaRng: "medium", maxDets: p.maxDets[2]);
        stats[11] = _summarize(0, areaRng: "large", maxDets: p.maxDets[2]);
    }

    /// <summary>Per-category AP at IoU index t (area all, last maxDets): mean precision over recall thresholds; -1 without ground truth.</summary>
    public double CategoryAP(int k, int t)
    {
        int m = p.maxDets.Length - 1;
        if (precision[t, 0, k, 0, m] == -1) return -1;
        double sum = 0;
        for (int r = 0; r < p.recThrs.Length; r++) sum += precision[t, r, k, 0, m];
        return sum / p.recThrs.Length;
    }
}

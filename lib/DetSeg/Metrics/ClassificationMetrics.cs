using System.Globalization;
using System.Net;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Metrics;

/// <summary>A per-class classification metric, as in the course's <c>ClassificationMetrics.metrics</c>.</summary>
public enum Metric
{
    /// <summary><c>(TP + TN) / Total</c>.</summary>
    Accuracy,
    /// <summary><c>TP / (TP + FN)</c> (sensitivity).</summary>
    Recall,
    /// <summary><c>TP / (TP + FP)</c>.</summary>
    Precision,
    /// <summary><c>2TP / (2TP + FP + FN)</c> (Sørensen–Dice).</summary>
    F1Score,
    /// <summary><c>TP / (TP + FP + FN)</c> (Jaccard).</summary>
    IoU,
    /// <summary><c>TN / (TN + FP)</c>: the recall of "not this class" (true negative rate).</summary>
    Specificity,
    /// <summary><c>TN / (TN + FN)</c>: the precision of "not this class".</summary>
    NegativePredictiveValue,
}

/// <summary>
/// Accumulates per-class confusion tables (TP, FN, FP, TN) and derives accuracy, recall, precision,
/// F1 and IoU per class, their mean and their frequency-weighted sum — the course's
/// <c>ClassificationMetrics</c>, on the device of its inputs.
/// </summary>
/// <remarks>
/// <para>Targets outside <c>[0, numClasses)</c> (the <c>-1</c> padding of masks) are ignored: they drop out
/// of every count. Each update is one <c>bincount</c> (see <see cref="ConfusionMatrix"/>), with no host
/// sync; the course's version builds a classes × pixels boolean matrix per update.</para>
/// <para>Denominators are <c>max(·, 1)</c> as in the course, so a class that appears in neither the
/// predictions nor the targets scores recall, precision, F1 and IoU of 0 but accuracy of 1 (all its
/// samples are true negatives). It counts fully in <see cref="Mean"/> (pulling it down) and not at all
/// in <see cref="Weighted"/> (its frequency is 0).</para>
/// </remarks>
public sealed class ClassificationMetrics : IMetricSet, IDisposable
{
    readonly ConfusionMatrix matrix;

    /// <summary>The metrics in the course's table order.</summary>
    public static readonly Metric[] All = [Metric.Accuracy, Metric.Recall, Metric.Precision, Metric.F1Score, Metric.IoU];

    /// <summary>Creates empty metrics for <paramref name="numClasses"/> classes.</summary>
    public ClassificationMetrics(int numClasses) => matrix = new ConfusionMatrix(numClasses);

    /// <summary>The number of classes.</summary>
    public int NumClasses => matrix.NumClasses;

    /// <summary>The underlying confusion matrix (rows actual, columns predicted).</summary>
    public ConfusionMatrix Confusion => matrix;

    /// <summary>Adds a batch of predicted and actual class indices (same shape, any rank).</summary>
    /// <exception cref="ArgumentException">Shapes differ or the tensors are not integer tensors.</exception>
    public void Update(Tensor pred, Tensor target) => matrix.Update(pred, target);

    /// <inheritdoc/>
    public void Reset() => matrix.Reset();

    /// <summary>Per-class true positives (int64).</summary>
    public Tensor TP => matrix.TP;
    /// <summary>Per-class false negatives (int64).</summary>
    public Tensor FN => matrix.FN;
    /// <summary>Per-class false positives (int64).</summary>
    public Tensor FP => matrix.FP;
    /// <summary>Per-class true negatives (int64).</summary>
    public Tensor TN => matrix.TN;
    /// <summary>Per-class sample count <c>TP + FN</c>.</summary>
    public Tensor Count => matrix.Count;
    /// <summary>Per-class frequency, the weights of <see cref="Weighted"/>.</summary>
    public Tensor Frequency => matrix.Frequency;
    /// <summary>The number of counted samples.</summary>
    public Tensor Total => matrix.Total;

    /// <summary>Per-class accuracy <c>(TP + TN) / max(Total, 1)</c>.</summary>
    // Sums through add(t, Scalars.OneL), not `+`: its hidden alpha is a temporary Scalar (Runtime/Scalars).
    public Tensor Accuracy => Ratio(TP.add(TN, One), Total);
    /// <summary>Per-class recall <c>TP / max(TP + FN, 1)</c>.</summary>
    public Tensor Recall => Ratio(TP, TP.add(FN, One));
    /// <summary>Per-class precision <c>TP / max(TP + FP, 1)</c>.</summary>
    public Tensor Precision => Ratio(TP, TP.add(FP, One));
    /// <summary>Per-class F1 score <c>2TP / max(2TP + FP + FN, 1)</c>.</summary>
    public Tensor F1Score => Ratio(TP.mul(Two), TP.mul(Two).add(FP, One).add(FN, One));
    /// <summary>Per-class IoU <c>TP / max(TP + FP + FN, 1)</c>.</summary>
    public Tensor IoU => Ratio(TP, TP.add(FP, One).add(FN, One));
    /// <summary>Per-class specificity <c>TN / (TN + FP)</c>: of the samples that are not this class, the share we did not call it. 1 − specificity is the rate of Type I errors (false alarms).</summary>
    public Tensor Specificity => Ratio(TN, TN.add(FP, One));
    /// <summary>Per-class negative predictive value <c>TN / (TN + FN)</c>: of the samples we did not call this class, the share that really are not.</summary>
    public Tensor NegativePredictiveValue => Ratio(TN, TN.add(FN, One));

    static Tensor Ratio(Tensor num, Tensor den) => num.to(float64) / den.clamp_min(One).to(float64);

    static Scalar One => Runtime.Scalars.OneL;
    static Scalar Two => Runtime.Scalars.TwoL;

    /// <summary>The per-class values of a metric (float64).</summary>
    public Tensor Get(Metric metric) => metric switch
    {
        Metric.Accuracy => Accuracy,
        Metric.Recall => Recall,
        Metric.Precision => Precision,
        Metric.F1Score => F1Score,
        Metric.IoU => IoU,
        Metric.Specificity => Specificity,
        Metric.NegativePredictiveValue => NegativePredictiveValue,
        _ => throw new ArgumentOutOfRangeException(nameof(metric), metric, null),
    };

    /// <summary>The unweighted mean over classes of a metric.</summary>
    public double Mean(Metric metric) { using var v = Get(metric); return v.mean().item<double>(); }

    /// <summary>
    /// Top-1 accuracy: the share of samples whose prediction is their class (trace of the confusion matrix over the
    /// total; 0 before any update). Not <see cref="Mean"/>(<see cref="Metric.Accuracy"/>), the course's per-class
    /// one-vs-rest accuracy that counts true negatives and stays near 98 % even for a poor 10-class model; it equals
    /// <see cref="Weighted"/>(<see cref="Metric.Recall"/>).
    /// </summary>
    public double Top1Accuracy
    {
        get
        {
            using var scope = NewDisposeScope();
            return (TP.sum().to(float64) / Total.clamp_min(One).to(float64)).item<double>();
        }
    }

    /// <summary>Whether <see cref="Values"/> lists <c>iou_&lt;class&gt;</c> per class (default true; ten-class logs read better without).</summary>
    public bool PerClassIoU { get; init; } = true;

    /// <summary>The frequency-weighted sum over classes of a metric (a convex combination when any sample was counted).</summary>
    public double Weighted(Metric metric) { using var v = Get(metric); using var f = Frequency; return (f * v).sum().item<double>(); }

    /// <summary>The snake_case name the course uses, e.g. <c>f1_score</c>.</summary>
    public static string NameOf(Metric metric) => metric switch
    {
        Metric.F1Score => "f1_score",
        Metric.IoU => "iou",
        Metric.NegativePredictiveValue => "npv",
        _ => metric.ToString().ToLowerInvariant(),
    };

    /// <summary>
    /// <c>accuracy</c> (<see cref="Top1Accuracy"/>), <c>mean_*</c> and <c>weighted_*</c> for every metric (course names,
    /// e.g. <c>mean_iou</c>), plus <c>iou_&lt;class&gt;</c> per class when <see cref="PerClassIoU"/> is set.
    /// </summary>
    public IReadOnlyDictionary<string, double> Values()
    {
        var d = new Dictionary<string, double> { ["accuracy"] = Top1Accuracy };
        foreach (var m in All)
        {
            d["mean_" + NameOf(m)] = Mean(m);
            d["weighted_" + NameOf(m)] = Weighted(m);
        }
        if (!PerClassIoU) return d;
        using var iou = IoU.cpu();
        for (int c = 0; c < NumClasses; c++) d[$"iou_{c}"] = iou[c].item<double>();
        return d;
    }

    // Rows: classes, then Mean and Weighted; columns: All. The course divides its int64 counts in torch's default
    // float32 and prints float(x) * 100 rounded to 2 decimals, so a ratio on a decimal tie (F1 = 113/160 =
    // 70.625 %) prints from its float32 value (0.706250011920929 -> 70.63 %), not from float64 (70.62 %).
    double[,] Table()
    {
        using var scope = NewDisposeScope();
        Tensor Ratio32(Tensor num, Tensor den) => num.to(float32) / den.clamp(min: 1).to(float32);
        Tensor tp = TP, fn = FN, fp = FP, tn = TN, count = tp + fn;
        var frequency = Ratio32(count, count.sum());
        var t = new double[NumClasses + 2, All.Length];
        for (int j = 0; j < All.Length; j++)
        {
            var v = All[j] switch
            {
                Metric.Accuracy => Ratio32(tp + tn, count.sum()),
                Metric.Recall => Ratio32(tp, tp + fn),
                Metric.Precision => Ratio32(tp, tp + fp),
                Metric.F1Score => Ratio32(2 * tp, 2 * tp + fp + fn),
                Metric.IoU => Ratio32(tp, tp + fp + fn),
                _ => throw new InvalidOperationException(All[j].ToString()),
            };
            var values = v.cpu().data<float>().ToArray();
            for (int i = 0; i < NumClasses; i++) t[i, j] = values[i];
            t[NumClasses, j] = v.mean().cpu().item<float>();
            t[NumClasses + 1, j] = (frequency * v).sum().cpu().item<float>();
        }
        return t;
    }

    // the course's perc: f'{float(x) * 100:.2f}%' (the product in float64, Python's half-even rounding)
    static string Percent(double x) => PyFormat.Fixed(x * 100, 2) + "%";

    /// <summary>The course's table: one row per class, then Mean and Weighted, in percent.</summary>
    public override string ToString() => ToString(null);

    /// <summary>The course's table with optional class names in the first column.</summary>
    public string ToString(IReadOnlyList<string>? classNames)
    {
        var t = Table();
        static string Perc(double x) => Percent(x).PadLeft(8);
        var sb = new StringBuilder("   Class  " + string.Join(' ', All.Select(m => NameOf(m).PadLeft(7))));
        sb.Append('\n').Append('-', 53);
        for (int i = 0; i < NumClasses; i++)
            sb.Append('\n').Append(Label(classNames, i).PadLeft(8)).Append(' ').Append(string.Join(' ', All.Select((_, j) => Perc(t[i, j]))));
        sb.Append('\n').Append('-', 53);
        sb.Append("\n    Mean ").Append(string.Join(' ', All.Select((_, j) => Perc(t[NumClasses, j]))));
        sb.Append("\nWeighted ").Append(string.Join(' ', All.Select((_, j) => Perc(t[NumClasses + 1, j]))));
        return sb.ToString();
    }

    /// <summary>The same table as HTML, for notebooks and reports.</summary>
    public string ToHtml(IReadOnlyList<string>? classNames = null)
    {
        var t = Table();
        static string Cell(double x) => Percent(x);
        var sb = new StringBuilder("<table class=\"detseg-metrics\"><thead><tr><th>Class</th>");
        foreach (var m in All) sb.Append("<th>").Append(NameOf(m)).Append("</th>");
        sb.Append("</tr></thead><tbody>");
        for (int i = 0; i < NumClasses + 2; i++)
        {
            string label = i < NumClasses ? Label(classNames, i) : i == NumClasses ? "Mean" : "Weighted";
            sb.Append(i >= NumClasses ? "<tr style=\"font-weight:bold\">" : "<tr>")
              .Append("<td>").Append(WebUtility.HtmlEncode(label)).Append("</td>");
            for (int j = 0; j < All.Length; j++) sb.Append("<td style=\"text-align:right\">").Append(Cell(t[i, j])).Append("</td>");
            sb.Append("</tr>");
        }
        return sb.Append("</tbody></table>").ToString();
    }

    static string Label(IReadOnlyList<string>? names, int i) =>
        names is not null && i < names.Count ? names[i] : i.ToString(CultureInfo.InvariantCulture);

    /// <inheritdoc/>
    public void Dispose() => matrix.Dispose();
}

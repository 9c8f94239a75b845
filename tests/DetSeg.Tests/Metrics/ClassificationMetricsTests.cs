using DetSeg.Metrics;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Metrics;

public class ClassificationMetricsTests
{
    // The course's worked example (Cat, Dog, Horse): rows actual, columns predicted.
    static readonly long[,] SeedMatrix = { { 42, 8, 0 }, { 6, 30, 4 }, { 1, 2, 17 } };

    // Expands a confusion matrix into (pred, target) samples.
    internal static (Tensor Pred, Tensor Target) Samples(long[,] cm)
    {
        var pred = new List<long>();
        var target = new List<long>();
        for (int i = 0; i < cm.GetLength(0); i++)
            for (int j = 0; j < cm.GetLength(1); j++)
                for (long k = 0; k < cm[i, j]; k++) { target.Add(i); pred.Add(j); }
        // Shuffle deterministically so no code path relies on sorted input.
        var order = Enumerable.Range(0, pred.Count).OrderBy(i => (i * 7919) % pred.Count).ToArray();
        return (tensor(order.Select(i => pred[i]).ToArray()), tensor(order.Select(i => target[i]).ToArray()));
    }

    static ClassificationMetrics SeedMetrics()
    {
        var m = new ClassificationMetrics(3);
        var (p, t) = Samples(SeedMatrix);
        m.Update(p, t);
        return m;
    }

    static double[] D(Tensor t) => t.to(float64).cpu().data<double>().ToArray();

    [Fact]
    public void ConfusionTables_MatchTheCoursePrintout()
    {
        // Course output "Cat | TP = 42 | FN = 8 | FP = 7 | TN = 53" etc.
        using var m = SeedMetrics();
        Assert.Equal(new double[] { 42, 30, 17 }, D(m.TP));
        Assert.Equal(new double[] { 8, 10, 3 }, D(m.FN));
        Assert.Equal(new double[] { 7, 10, 4 }, D(m.FP));
        Assert.Equal(new double[] { 53, 60, 86 }, D(m.TN));
        Assert.Equal(110, m.Total.item<long>());
        var value = m.Confusion.Value;
        for (int i = 0; i < 3; i++) for (int j = 0; j < 3; j++) Assert.Equal(SeedMatrix[i, j], value[i, j].item<long>());
    }

    [Fact]
    public void PerClassMetrics_MatchTheCourseExample()
    {
        // Accuracy/recall/precision: the course's table; F1 and IoU by hand:
        // F1 = 2TP/(2TP+FP+FN) = 84/99, 60/80, 34/41; IoU = TP/(TP+FP+FN) = 42/57, 30/50, 17/24.
        using var m = SeedMetrics();
        AssertClose(new[] { 0.863636, 0.818182, 0.936364 }, D(m.Accuracy));
        AssertClose(new[] { 0.84, 0.75, 0.85 }, D(m.Recall));
        AssertClose(new[] { 0.857143, 0.75, 0.809524 }, D(m.Precision));
        AssertClose(new[] { 84.0 / 99, 60.0 / 80, 34.0 / 41 }, D(m.F1Score));
        AssertClose(new[] { 42.0 / 57, 30.0 / 50, 17.0 / 24 }, D(m.IoU));
    }

    [Fact]
    public void MeanAndWeighted_MatchTheCourseExample()
    {
        // Course: Mean 87.27 / 81.33 / 80.56 %, Weighted 86.03 / 80.91 / 80.95 %.
        using var m = SeedMetrics();
        Assert.Equal(0.8727, m.Mean(Metric.Accuracy), 4);
        Assert.Equal(0.8133, m.Mean(Metric.Recall), 4);
        Assert.Equal(0.8056, m.Mean(Metric.Precision), 4);
        Assert.Equal(0.8603, m.Weighted(Metric.Accuracy), 4);
        Assert.Equal(0.8091, m.Weighted(Metric.Recall), 4);
        Assert.Equal(0.8095, m.Weighted(Metric.Precision), 4);
        // F1/IoU mean by hand: (84/99 + 3/4 + 34/41)/3; weighted by 50/110, 40/110, 20/110.
        Assert.Equal((84.0 / 99 + 0.75 + 34.0 / 41) / 3, m.Mean(Metric.F1Score), 9);
        Assert.Equal((50 * 42.0 / 57 + 40 * 0.6 + 20 * 17.0 / 24) / 110, m.Weighted(Metric.IoU), 9);
        Assert.Equal(m.Mean(Metric.IoU), m.Values()["mean_iou"]);
    }

    [Fact]
    public void ToString_PrintsTheCourseTableLayout()
    {
        using var m = SeedMetrics();
        string expected = string.Join('\n',
            "   Class  accuracy  recall precision f1_score     iou",
            new string('-', 53),
            "       0   86.36%   84.00%   85.71%   84.85%   73.68%",
            "       1   81.82%   75.00%   75.00%   75.00%   60.00%",
            "       2   93.64%   85.00%   80.95%   82.93%   70.83%",
            new string('-', 53),
            "    Mean   87.27%   81.33%   80.56%   80.93%   68.17%",
            "Weighted   86.03%   80.91%   80.95%   80.92%   68.19%");
        Assert.Equal(expected, m.ToString());
        Assert.Contains("<td>Weighted</td>", m.ToHtml());
        Assert.Contains("<td>Cat</td>", m.ToHtml(["Cat", "Dog", "Horse"]));
    }

    // The course divides in float32 and prints float(x) * 100 with Python's '.2f': F1 = 226/320 = 70.625 % exactly,
    // whose float32 is 0.706250011920929 and prints 70.63 % (float64 0.70625 prints 70.62 %). Expected cells:
    // numpy float32 divisions printed by Python 3.
    [Fact]
    public void ToString_PrintsFromFloat32LikeTheCourse_OnADecimalTie()
    {
        using var m = new ClassificationMetrics(2);
        var (p, t) = Samples(new long[,] { { 113, 41 }, { 53, 100 } });   // class 0: tp 113, fn 41, fp 53
        m.Update(p, t);
        var rows = m.ToString().Split('\n');
        Assert.Equal("       0   69.38%   73.38%   68.07%   70.63%   54.59%", rows[2]);
        Assert.Contains("<td style=\"text-align:right\">70.63%</td>", m.ToHtml());
        Assert.Equal(226.0 / 320, m.Get(Metric.F1Score)[0].item<double>(), 15);   // the values themselves stay float64
    }

    [Theory]
    [InlineData(0.125, 2, "0.12")]          // exact binary ties round half to even, as Python
    [InlineData(3.125, 2, "3.12")]
    [InlineData(0.0625, 3, "0.062")]
    [InlineData(70.62500119209290, 2, "70.63")]
    [InlineData(-0.001, 2, "-0.00")]
    [InlineData(2.5, 0, "2")]
    [InlineData(1e-7, 3, "0.000")]
    [InlineData(123.456, 1, "123.5")]
    [InlineData(double.NaN, 2, "nan")]
    public void PyFormat_Fixed_MatchesPythonsFormat(double value, int decimals, string python) =>
        Assert.Equal(python, PyFormat.Fixed(value, decimals));

    [Fact]
    public void Update_IgnoresTargetsOutsideClassRange()
    {
        using var m = SeedMetrics();
        var (p, t) = Samples(SeedMatrix);
        using var padded = new ClassificationMetrics(3);
        // The same samples plus ignored pixels (-1 padding and an out-of-range 3) with arbitrary predictions.
        padded.Update(cat(new[] { p, tensor(new long[] { 0, 1, 2, 2 }) }), cat(new[] { t, tensor(new long[] { -1, -1, 3, -1 }) }));
        foreach (var metric in ClassificationMetrics.All)
            AssertClose(D(m.Get(metric)), D(padded.Get(metric)));
        Assert.Equal(110, padded.Total.item<long>());
    }

    [Fact]
    public void Update_AccumulatesAcrossBatchesAndResetForgets()
    {
        var (p, t) = Samples(SeedMatrix);
        using var m = new ClassificationMetrics(3);
        m.Update(p.narrow(0, 0, 50), t.narrow(0, 0, 50));
        m.Update(p.narrow(0, 50, 60), t.narrow(0, 50, 60));
        Assert.Equal(new double[] { 42, 30, 17 }, D(m.TP));
        m.Reset();
        Assert.Equal(0, m.Total.item<long>());
        m.Update(p.reshape(10, 11), t.reshape(10, 11)); // any rank
        Assert.Equal(new double[] { 53, 60, 86 }, D(m.TN));
    }

    [Fact]
    public void Counts_SurviveTheCallersPerBatchDisposeScope()
    {
        // The trainer updates metrics inside a per-batch dispose scope; the running counts must outlive it.
        var (p, t) = Samples(SeedMatrix);
        using var m = new ClassificationMetrics(3);
        using (var batch = NewDisposeScope()) m.Update(p.narrow(0, 0, 50), t.narrow(0, 0, 50));
        using (var batch = NewDisposeScope()) m.Update(p.narrow(0, 50, 60), t.narrow(0, 50, 60));
        Assert.Equal(new double[] { 42, 30, 17 }, D(m.TP));
    }

    [Fact]
    public void ClassAbsentFromPredictionAndTarget_ScoresZeroExceptAccuracy_AndWeighsNothing()
    {
        using var m = new ClassificationMetrics(3);
        m.Update(tensor(new long[] { 0, 0, 1, 1 }), tensor(new long[] { 0, 1, 1, 1 }));
        Assert.Equal(1.0, D(m.Accuracy)[2]);
        Assert.Equal(0.0, D(m.Recall)[2]);
        Assert.Equal(0.0, D(m.IoU)[2]);
        // Mean includes the absent class; weighted gives it weight 0.
        double iou0 = 1.0 / 2, iou1 = 2.0 / 3;
        Assert.Equal((iou0 + iou1 + 0) / 3, m.Mean(Metric.IoU), 9);
        Assert.Equal(0.25 * iou0 + 0.75 * iou1, m.Weighted(Metric.IoU), 9);
    }

    [Fact]
    public void PredictionOutsideRange_IsAMissNotAFalsePositive()
    {
        using var m = new ClassificationMetrics(2);
        m.Update(tensor(new long[] { 5, 1 }), tensor(new long[] { 0, 1 }));
        Assert.Equal(new double[] { 0, 1 }, D(m.TP));
        Assert.Equal(new double[] { 1, 0 }, D(m.FN));
        Assert.Equal(new double[] { 0, 0 }, D(m.FP));
    }

    [Fact]
    public void EmptyInput_GivesZerosWithoutDividingByZero()
    {
        using var m = new ClassificationMetrics(2);
        m.Update(zeros(0, dtype: int64), zeros(0, dtype: int64));
        foreach (var metric in ClassificationMetrics.All)
            Assert.All(D(m.Get(metric)), v => Assert.Equal(0.0, v));
        Assert.Equal(0.0, m.Weighted(Metric.IoU));
    }

    [Fact]
    public void WrongShapes_ThrowNamingBothShapes()
    {
        using var m = new ClassificationMetrics(2);
        var e = Assert.Throws<ArgumentException>(() => m.Update(zeros(4, 5, dtype: int64), zeros(4, 6, dtype: int64)));
        Assert.Contains("[4, 5]", e.Message);
        Assert.Contains("[4, 6]", e.Message);
        Assert.Throws<ArgumentException>(() => m.Update(zeros(4, 2), zeros(4, 2, dtype: int64)));
    }

    [Fact]
    public void WeightedCrossEntropy_EqualsPerSampleLossWeightedByNormalizedClassWeights()
    {
        // The course's identity: F.cross_entropy(x, y, w) == sum(loss_i * w[y_i] / sum w[y]).
        var g = new Generator(0);
        var x = randn(new long[] { 10, 3 }, generator: g);
        var y = randint(0, 3, new long[] { 10 }, generator: g);
        var w = rand(new long[] { 3 }, generator: g) * 10;
        var expected = nn.functional.cross_entropy(x, y, weight: w);
        var byHand = WeightedCrossEntropy.ByHand(x, y, w);
        Assert.True(allclose(expected, byHand), $"{expected.item<float>()} vs {byHand.item<float>()}");
        // And it is not the unweighted loss (the weights matter).
        Assert.False(allclose(nn.functional.cross_entropy(x, y), byHand));
        Assert.Throws<ArgumentException>(() => WeightedCrossEntropy.ByHand(x, y, w.narrow(0, 0, 2)));
    }

    static void AssertClose(double[] expected, double[] actual, double tol = 1e-6)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol, $"[{i}] expected {expected[i]}, got {actual[i]}");
    }
}

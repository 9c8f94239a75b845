using DetSeg.Detection;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Detection;

// All expected values are hand computations with COCO's definition (101 recall points, monotone envelope).
public class MeanAveragePrecisionTests
{
    static void Add(MeanAveragePrecision m, float[] scores, float[,] boxes, long[] labels, float[,] truth, long[] trueLabels)
    {
        int d = scores.Length, t = trueLabels.Length;
        m.Update(tensor(scores).view(1, d), tensor(boxes.Length == 0 ? new float[0] : boxes.Cast<float>().ToArray()).view(1, d, 4), tensor(labels).view(1, d),
                 tensor(truth.Length == 0 ? new float[0] : truth.Cast<float>().ToArray()).view(1, t, 4), tensor(trueLabels).view(1, t));
    }

    [Fact]
    public void PerfectDetection_GivesOne()
    {
        var m = new MeanAveragePrecision(3);
        Add(m, new[] { 0.9f }, new float[,] { { .5f, .5f, .2f, .2f } }, new long[] { 1 }, new float[,] { { .5f, .5f, .2f, .2f } }, new long[] { 1 });
        Assert.Equal(1.0, m.Map50, 9);
        Assert.Equal(1.0, m.Map50To95, 9);
        Assert.True(double.IsNaN(m.PerClassAP()[0]));   // classes without ground truth are excluded
    }

    [Fact]
    public void NoDetections_GiveZero_NoGroundTruthGivesNaN()
    {
        var m = new MeanAveragePrecision(2);
        Add(m, new float[0], new float[0, 0], new long[0], new float[,] { { .5f, .5f, .2f, .2f } }, new long[] { 0 });
        Assert.Equal(0.0, m.Map50, 9);
        var empty = new MeanAveragePrecision(2);
        Add(empty, new[] { 0.9f }, new float[,] { { .5f, .5f, .2f, .2f } }, new long[] { 0 }, new float[0, 0], new long[0]);
        Assert.True(double.IsNaN(empty.Map50));
        var (tp, fp, fn) = empty.Counts();
        Assert.Equal(new long[] { 0, 1 }, new[] { tp[0], fp[0] });
        Assert.Equal(0, fn[0]);
    }

    [Fact]
    public void DuplicateBetweenTwoHits_LowersTheEnvelope()
    {
        // two true boxes; detections by score: hit A (0.9), duplicate of A (0.8), hit B (0.7)
        // recall .5 .5 1, precision 1 .5 2/3 -> envelope 1 2/3 2/3; 51 recall points at 1, 50 at 2/3
        var m = new MeanAveragePrecision(1);
        Add(m, new[] { 0.9f, 0.8f, 0.7f }, new float[,] { { .2f, .2f, .1f, .1f }, { .2f, .2f, .1f, .1f }, { .7f, .7f, .1f, .1f } }, new long[] { 0, 0, 0 },
            new float[,] { { .2f, .2f, .1f, .1f }, { .7f, .7f, .1f, .1f } }, new long[] { 0, 0 });
        Assert.Equal((51 + 50 * 2.0 / 3) / 101, m.Map50, 9);
        var (rc, pr) = m.PrecisionRecall(0);
        Assert.Equal(new[] { .5, .5, 1 }, rc);
        Assert.Equal(new[] { 1, 2.0 / 3, 2.0 / 3 }, pr.Select(v => Math.Round(v, 12)).ToArray().Select(v => v).ToArray(), new Tol());
        var (tp, fp, fn) = m.Counts(0.5, 0.0);
        Assert.Equal((2L, 1L, 0L), (tp[0], fp[0], fn[0]));
    }

    [Fact]
    public void IouThresholds_CountOnlyWhereOverlapSuffices()
    {
        // IoU = 0.62: a hit at 0.50, 0.55, 0.60 only -> mAP@.5:.95 = 3/10; a wrong class never matches
        var m = new MeanAveragePrecision(2);
        Add(m, new[] { 0.8f, 0.9f }, new float[,] { { .5f, .31f, 1f, .62f }, { .5f, .5f, 1, 1 } }, new long[] { 0, 1 }, new float[,] { { .5f, .5f, 1, 1 } }, new long[] { 0 });
        Assert.Equal(1.0, m.Map50, 9);
        Assert.Equal(0.0, m.Map75, 9);
        Assert.Equal(0.3, m.Map50To95, 9);
    }

    [Fact]
    public void ImagesAreMatchedSeparately_AndResetForgets()
    {
        var m = new MeanAveragePrecision(1);
        // image 1's detection lies on image 0's box position only: it is a false positive there
        Add(m, new[] { 0.9f }, new float[,] { { .2f, .2f, .1f, .1f } }, new long[] { 0 }, new float[,] { { .2f, .2f, .1f, .1f } }, new long[] { 0 });
        Add(m, new[] { 0.95f }, new float[,] { { .2f, .2f, .1f, .1f } }, new long[] { 0 }, new float[,] { { .7f, .7f, .1f, .1f } }, new long[] { 0 });
        // order: FP (0.95), TP (0.9): recall 0 .5, precision 0 .5 -> envelope .5 .5; 51 points at .5, the rest 0
        Assert.Equal(51 * 0.5 / 101, m.Map50, 9);
        Assert.Equal(2, m.NumImages);
        m.Reset();
        Assert.Equal(0, m.NumImages);
        Assert.True(double.IsNaN(m.Values()["map50"]));
    }

    [Fact]
    public void MatchImage_FlagsFalsePositivesAndMisses()
    {
        var (correct, found) = MeanAveragePrecision.MatchImage(
            new[] { new[] { .2f, .2f, .1f, .1f }, new[] { .7f, .7f, .1f, .1f } }, new long[] { 0, 3 }, new[] { .9f, .8f },
            new[] { new[] { .2f, .2f, .1f, .1f }, new[] { .7f, .7f, .1f, .1f } }, new long[] { 0, 2 });
        Assert.Equal(new[] { true, false }, correct);   // second detection has the wrong class
        Assert.Equal(new[] { true, false }, found);
    }

    sealed class Tol : IEqualityComparer<double>
    {
        public bool Equals(double a, double b) => Math.Abs(a - b) < 1e-9;
        public int GetHashCode(double v) => 0;
    }
}

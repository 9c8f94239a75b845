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

    // COCO's IoU thresholds come from linspace: the 8th is exactly 0.85, so an integer box with IoU 170/200 = 0.85
    // matches there (0.5 + 0.05·7 = 0.8500000000000001 would not). It fails at 0.9 and 0.95: AP@.5:.95 = 8/10.
    [Fact]
    public void IouExactlyOnThreshold_MatchesAsCoco()
    {
        var m = new MeanAveragePrecision(1);
        Add(m, new[] { .9f }, new float[,] { { 8.5f, 5, 17, 10 } }, new long[] { 0 }, new float[,] { { 10, 5, 20, 10 } }, new long[] { 0 });
        Assert.Equal(0.85, MeanAveragePrecision.IouThresholds[7]);
        Assert.Equal(1.0, m.AveragePrecision(0, MeanAveragePrecision.IouThresholds[7]), 12);
        Assert.Equal(0.0, m.AveragePrecision(0, MeanAveragePrecision.IouThresholds[8]), 12);
        Assert.Equal(0.8, m.Map50To95, 12);
    }

    // 20 true boxes, 7 found first, then 13 false positives: recall tops out at 7/20 = 0.35 (the double just below
    // 0.35), which is under COCO's recall threshold 35·0.01 = 0.35000000000000003. COCO's precision is 1 at
    // thresholds 0 … 0.34 and 0 from 0.35 on: AP = 35/101 (with r/100 it would be 36/101).
    [Fact]
    public void RecallJustBelowTheLinspaceThreshold_CountsAsCoco()
    {
        var m = new MeanAveragePrecision(1);
        for (int i = 0; i < 20; i++)
        {
            float c = 10 + 30 * i;
            bool found = i < 7;
            Add(m, new[] { found ? .9f : .1f }, new float[,] { { found ? c : c + 1000, 50, 20, 20 } }, new long[] { 0 },
                new float[,] { { c, 50, 20, 20 } }, new long[] { 0 });
        }
        Assert.Equal(35.0 / 101, m.Map50, 12);
    }

    // COCO keeps the 100 best detections per image *and class*: 100 confident false positives of class 0 do not
    // push out the one (lower-scored) true positive of class 1.
    [Fact]
    public void MaxDetections_ArePerImageAndClass()
    {
        var m = new MeanAveragePrecision(2);
        var scores = Enumerable.Repeat(.9f, 100).Append(.5f).ToArray();
        var boxes = new float[101, 4];
        for (int i = 0; i < 100; i++) { boxes[i, 0] = 500 + i; boxes[i, 1] = 500; boxes[i, 2] = 4; boxes[i, 3] = 4; }
        boxes[100, 0] = 50; boxes[100, 1] = 50; boxes[100, 2] = 20; boxes[100, 3] = 20;
        var labels = Enumerable.Repeat(0L, 100).Append(1L).ToArray();
        Add(m, scores, boxes, labels, new float[,] { { 50, 50, 20, 20 }, { 200, 200, 20, 20 } }, new long[] { 1, 0 });
        Assert.Equal(new[] { 0.0, 1.0 }, m.PerClassAP(0.5), new Tol());   // COCO's precision is tp / (tp + fp + 2.2e-16): 1 - 1e-16
        Assert.Equal(0.5, m.Map50, 12);
        // a 101st detection of one class in one image does not count
        var crowded = new MeanAveragePrecision(1);
        labels = Enumerable.Repeat(0L, 101).ToArray();
        Add(crowded, scores, boxes, labels, new float[,] { { 50, 50, 20, 20 } }, new long[] { 0 });
        Assert.Equal(0.0, crowded.Map50, 12);
        var wider = new MeanAveragePrecision(1, maxDetections: 101);
        Add(wider, scores, boxes, labels, new float[,] { { 50, 50, 20, 20 } }, new long[] { 0 });
        Assert.Equal(1.0 / 101, wider.Map50, 12);   // recall 1 only after 100 false positives: precision 1/101 at every threshold
    }

    // Summary: COCO's twelve names and lines; areas in pixels through ImageSize (a 0.25 x 0.25 box of a 256-pixel
    // image is 64 x 64 = 4096 px², medium); nothing small or large: −1 as COCO.
    [Fact]
    public void Summary_GivesCocosTwelveNumbers()
    {
        var m = new MeanAveragePrecision(1) { ImageSize = (256, 256) };
        Add(m, new[] { .9f, .8f }, new float[,] { { .5f, .5f, .25f, .25f }, { .2f, .2f, .1f, .1f } }, new long[] { 0, 0 },
            new float[,] { { .5f, .5f, .25f, .25f } }, new long[] { 0 });
        var s = m.Summary();
        Assert.Equal(new[] { "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl" }, s.Entries.Select(e => e.Name));
        // the medium detection matches at every threshold; the small one (25.6 px wide) is a false positive after it
        Assert.Equal(new[] { 1.0, 1, 1, -1, 1, -1, 1, 1, 1, -1, 1, -1 }, s.Stats, new Tol());
        Assert.Equal(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000", s.Entries[0].ToString());
        Assert.Equal(" Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 1.000", s.Entries[1].ToString());
        Assert.Equal(" Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = -1.000", s.Entries[3].ToString());
        Assert.Equal(" Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 1.000", s.Entries[6].ToString());
        Assert.Equal(12, s.ToString().Split('\n').Length);
        Assert.Equal(1.0, s["APm"], 12);
        Assert.Throws<KeyNotFoundException>(() => s["mAP"]);
        // without the image size the same boxes are fractions of a pixel: all small
        m.ImageSize = null;
        Assert.Equal(1.0, m.Summary()["APs"], 12);
        Assert.Equal(-1.0, m.Summary()["APm"]);
    }

    sealed class Tol : IEqualityComparer<double>
    {
        public bool Equals(double a, double b) => Math.Abs(a - b) < 1e-9;
        public int GetHashCode(double v) => 0;
    }
}

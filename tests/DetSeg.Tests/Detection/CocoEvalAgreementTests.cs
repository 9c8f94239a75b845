using DetSeg.Detection;
using static TorchSharp.torch;

namespace DetSeg.Tests.Detection;

// MeanAveragePrecision against CocoEvalPort (a literal port of pycocotools' COCOeval) on seeded random sets
// built to hit every place where the two could part: misses, false positives, duplicates, images without
// ground truth, classes without detections or without ground truth, more than 100 detections in an image,
// tied scores, integer boxes whose IoU is exactly a threshold, and recall exactly on a recall threshold.
// Cross-checked once (2026-12-05) against cocoeval.py itself (cocodataset/cocoapi master, numpy 1.24.2; bbIou in
// Python because the pycocotools C extension could not be installed here): on these 22 sets DetSeg's twelve
// stats were bit-identical, per-class AP within 1.5e-15, and the printed summary lines identical.
public class CocoEvalAgreementTests
{
    sealed record Truth(int Cat, float Cx, float Cy, float W, float H);
    sealed record Det(float Score, int Cat, float Cx, float Cy, float W, float H);
    sealed record Img(List<Truth> Truth, List<Det> Dets);

    // Coordinates are multiples of 1/4 px below 2^12: centres and sizes are exact in float32, so COCO's x, y, w, h
    // (cx - w/2 …) are the same numbers on both sides.
    static float Q(double v) => (float)(Math.Round(v * 4) / 4);

    static Truth RandomTruth(Random rng, int cat)
    {
        // sizes from 4 to 200 px: small (< 32²), medium and large (> 96²) areas all occur
        double w = 4 + rng.NextDouble() * 196, h = 4 + rng.NextDouble() * 196;
        return new Truth(cat, Q(w / 2 + rng.NextDouble() * (640 - w)), Q(h / 2 + rng.NextDouble() * (640 - h)), Q(w), Q(h));
    }

    static Det Jitter(Random rng, Truth t, float score, double amount) =>
        new(score, t.Cat, Q(t.Cx + (rng.NextDouble() - .5) * amount * t.W), Q(t.Cy + (rng.NextDouble() - .5) * amount * t.H),
            Q(Math.Max(1, t.W * (1 + (rng.NextDouble() - .5) * amount))), Q(Math.Max(1, t.H * (1 + (rng.NextDouble() - .5) * amount))));

    static float Score(Random rng, bool tied) => tied ? new[] { .25f, .5f, .75f }[rng.Next(3)] : (float)rng.NextDouble();

    // Jittered true boxes with misses, false positives and duplicates; some images without ground truth;
    // class C-1 never has ground truth and class C-2 is never detected.
    static List<Img> Jittered(int seed, int numImages, int numClasses, bool tiedScores)
    {
        var rng = new Random(seed);
        var images = new List<Img>();
        for (int i = 0; i < numImages; i++)
        {
            var truth = new List<Truth>(); var dets = new List<Det>();
            int nTruth = rng.NextDouble() < .15 ? 0 : rng.Next(1, 7);
            for (int j = 0; j < nTruth; j++) truth.Add(RandomTruth(rng, rng.Next(numClasses - 1)));
            foreach (var t in truth)
            {
                if (t.Cat == numClasses - 2 || rng.NextDouble() < .2) continue;                      // a miss
                dets.Add(Jitter(rng, t, Score(rng, tiedScores), .4));
                if (rng.NextDouble() < .2) dets.Add(Jitter(rng, t, Score(rng, tiedScores), .2));     // a duplicate
            }
            int nFalse = rng.Next(0, 4);
            for (int j = 0; j < nFalse; j++)
            {
                int cat = rng.Next(numClasses);
                if (cat == numClasses - 2) cat = numClasses - 1;
                var b = RandomTruth(rng, cat);
                dets.Add(new Det(Score(rng, tiedScores), cat, b.Cx, b.Cy, b.W, b.H));
            }
            images.Add(new Img(truth, dets.OrderBy(_ => rng.Next()).ToList()));
        }
        return images;
    }

    // Images with 150 detections: class 0 alone has more than 100 in an image, the true positives partly below the 100th score.
    static List<Img> Crowded(int seed)
    {
        var rng = new Random(seed);
        var images = new List<Img>();
        for (int i = 0; i < 4; i++)
        {
            var truth = Enumerable.Range(0, 12).Select(j => RandomTruth(rng, j % 3)).ToList();
            var dets = new List<Det>();
            foreach (var t in truth) dets.Add(Jitter(rng, t, (float)rng.NextDouble(), .3));
            while (dets.Count < 150)
            {
                var b = RandomTruth(rng, rng.NextDouble() < .8 ? 0 : rng.Next(1, 3));
                dets.Add(new Det((float)rng.NextDouble(), b.Cat, b.Cx, b.Cy, b.W, b.H));
            }
            images.Add(new Img(truth, dets.OrderBy(_ => rng.Next()).ToList()));
        }
        return images;
    }

    // Integer boxes whose IoU with their true box is exactly k/20 = 0.50, 0.55, …, 0.95: a 20 x 10 true box and a
    // detection of the same height and width 10..19 sharing its left edge.
    static List<Img> ExactIou(int seed)
    {
        var rng = new Random(seed);
        var images = new List<Img>();
        for (int i = 0; i < 6; i++)
        {
            var truth = new List<Truth>(); var dets = new List<Det>();
            for (int j = 0; j < 4; j++)
            {
                int x = 70 * j + rng.Next(0, 10), y = 35 * i + rng.Next(0, 10), scale = rng.Next(1, 4), wd = rng.Next(10, 21);
                truth.Add(new Truth(j % 2, x + 10f * scale, y + 5f * scale, 20 * scale, 10 * scale));
                dets.Add(new Det(Score(rng, true), j % 2, x + wd * scale / 2f, y + 5f * scale, wd * scale, 10 * scale));
            }
            images.Add(new Img(truth, dets));
        }
        return images;
    }

    // Recall landing exactly on recall thresholds where linspace(0, 1, 101) is one ulp above r/100: class 0 has 20
    // true boxes (7 or 19 found: 0.35, 0.95), class 1 has 100 (41, 47, 57, 69, 70, 82, 83 or 94 found).
    static List<Img> RecallOnThreshold(int seed)
    {
        var rng = new Random(seed);
        int found0 = new[] { 7, 19 }[seed % 2], found1 = new[] { 41, 47, 57, 69, 70, 82, 83, 94 }[seed % 8];
        var images = Enumerable.Range(0, 20).Select(_ => new Img(new List<Truth>(), new List<Det>())).ToList();
        var all = new List<(int img, Truth t)>();
        for (int j = 0; j < 20; j++) all.Add((j, RandomTruth(rng, 0)));
        for (int j = 0; j < 100; j++) all.Add((j % 20, RandomTruth(rng, 1)));
        int seen0 = 0, seen1 = 0;
        foreach (var (img, t) in all)
        {
            images[img].Truth.Add(t);
            bool hit = t.Cat == 0 ? seen0++ < found0 : seen1++ < found1;
            if (hit) images[img].Dets.Add(new Det((float)rng.NextDouble(), t.Cat, t.Cx, t.Cy, t.W, t.H));
        }
        for (int j = 0; j < 30; j++)   // false positives far from every true box, interleaved by score
            images[rng.Next(20)].Dets.Add(new Det((float)rng.NextDouble(), rng.Next(2), 2000 + j * 10, 2000, 5, 5));
        return images;
    }

    static MeanAveragePrecision RunDetSeg(List<Img> images, int numClasses)
    {
        var m = new MeanAveragePrecision(numClasses);
        // batches of 3 images, padded with label -1 rows (their boxes are garbage that must be ignored)
        for (int start = 0; start < images.Count; start += 3)
        {
            var batch = images.Skip(start).Take(3).ToList();
            int d = Math.Max(1, batch.Max(im => im.Dets.Count)), t = Math.Max(1, batch.Max(im => im.Truth.Count)), b = batch.Count;
            var scores = new float[b * d]; var boxes = Enumerable.Repeat(7f, b * d * 4).ToArray(); var labels = Enumerable.Repeat(-1L, b * d).ToArray();
            var tboxes = Enumerable.Repeat(3f, b * t * 4).ToArray(); var tlabels = Enumerable.Repeat(-1L, b * t).ToArray();
            for (int i = 0; i < b; i++)
            {
                for (int j = 0; j < batch[i].Dets.Count; j++)
                {
                    var x = batch[i].Dets[j]; int k = i * d + j;
                    scores[k] = x.Score; labels[k] = x.Cat;
                    boxes[4 * k] = x.Cx; boxes[4 * k + 1] = x.Cy; boxes[4 * k + 2] = x.W; boxes[4 * k + 3] = x.H;
                }
                for (int j = 0; j < batch[i].Truth.Count; j++)
                {
                    var x = batch[i].Truth[j]; int k = i * t + j;
                    tlabels[k] = x.Cat;
                    tboxes[4 * k] = x.Cx; tboxes[4 * k + 1] = x.Cy; tboxes[4 * k + 2] = x.W; tboxes[4 * k + 3] = x.H;
                }
            }
            m.Update(tensor(scores).view(b, d), tensor(boxes).view(b, d, 4), tensor(labels).view(b, d),
                     tensor(tboxes).view(b, t, 4), tensor(tlabels).view(b, t));
        }
        return m;
    }

    static CocoEvalPort RunPort(List<Img> images, int numClasses)
    {
        static double[] Xywh(float cx, float cy, float w, float h) => [(double)cx - (double)w / 2, (double)cy - (double)h / 2, w, h];
        var gts = new List<CocoEvalPort.Ann>(); var dts = new List<CocoEvalPort.Ann>();
        for (int i = 0; i < images.Count; i++)
        {
            foreach (var t in images[i].Truth)
            {
                var bb = Xywh(t.Cx, t.Cy, t.W, t.H);
                gts.Add(new CocoEvalPort.Ann { id = gts.Count + 1, image_id = i + 1, category_id = t.Cat + 1, bbox = bb, area = bb[2] * bb[3] });
            }
            foreach (var d in images[i].Dets)   // loadRes: ids from 1, area = w·h
            {
                var bb = Xywh(d.Cx, d.Cy, d.W, d.H);
                dts.Add(new CocoEvalPort.Ann { id = dts.Count + 1, image_id = i + 1, category_id = d.Cat + 1, bbox = bb, area = bb[2] * bb[3], score = d.Score });
            }
        }
        var ev = new CocoEvalPort(gts, dts, Enumerable.Range(1, images.Count).ToArray(), Enumerable.Range(1, numClasses).ToArray());
        ev.evaluate(); ev.accumulate(); ev.summarize();
        return ev;
    }

    static void AssertAgree(List<Img> images, int numClasses, string what)
    {
        var m = RunDetSeg(images, numClasses);
        var coco = RunPort(images, numClasses);
        var stats = m.Summary().Stats;
        for (int s = 0; s < 12; s++)
            Assert.True(Math.Abs(stats[s] - coco.stats[s]) < 1e-9, $"{what}: stats[{s}] DetSeg {stats[s]:R} vs COCOeval {coco.stats[s]:R}");
        for (int t = 0; t < 10; t++)
            for (int c = 0; c < numClasses; c++)
            {
                double ours = m.AveragePrecision(c, MeanAveragePrecision.IouThresholds[t]), theirs = coco.CategoryAP(c, t);
                if (theirs == -1) Assert.True(double.IsNaN(ours), $"{what}: class {c} has no ground truth; AP {ours}");
                else Assert.True(Math.Abs(ours - theirs) < 1e-9, $"{what}: class {c} IoU {coco.p.iouThrs[t]}: AP {ours:R} vs COCOeval {theirs:R}");
            }
        Assert.Equal(coco.stats[0], m.Map50To95, 9);
        Assert.Equal(coco.stats[1], m.Map50, 9);
        Assert.Equal(coco.stats[2], m.Map75, 9);
    }

    [Theory]
    [InlineData(0)] [InlineData(1)] [InlineData(2)] [InlineData(3)] [InlineData(4)]
    public void JitteredSets_WithMissesDuplicatesAndEmptyImages_AgreeWithCocoEval(int seed) =>
        AssertAgree(Jittered(seed, 40, 6, tiedScores: false), 6, $"jittered seed {seed}");

    [Theory]
    [InlineData(10)] [InlineData(11)] [InlineData(12)]
    public void TiedScores_AgreeWithCocoEval(int seed) => AssertAgree(Jittered(seed, 40, 4, tiedScores: true), 4, $"tied seed {seed}");

    [Theory]
    [InlineData(20)] [InlineData(21)]
    public void MoreThan100DetectionsInAnImage_AgreeWithCocoEval(int seed) => AssertAgree(Crowded(seed), 3, $"crowded seed {seed}");

    [Theory]
    [InlineData(30)] [InlineData(31)] [InlineData(32)]
    public void IntegerBoxesWithIouExactlyOnAThreshold_AgreeWithCocoEval(int seed) => AssertAgree(ExactIou(seed), 2, $"exact IoU seed {seed}");

    [Theory]
    [InlineData(0)] [InlineData(1)] [InlineData(2)] [InlineData(3)] [InlineData(4)] [InlineData(5)] [InlineData(6)] [InlineData(7)]
    public void RecallExactlyOnARecallThreshold_AgreesWithCocoEval(int seed) => AssertAgree(RecallOnThreshold(seed), 2, $"recall seed {seed}");

    [Fact]
    public void AllKindsTogether_AgreeWithCocoEval()
    {
        var images = Jittered(40, 30, 3, tiedScores: true).Concat(Crowded(41)).Concat(ExactIou(42)).Concat(RecallOnThreshold(43)).ToList();
        AssertAgree(images, 3, "mixed");
    }

    // COCO's summary is np.mean(s[s > -1]); numpy sums pairwise in buffers of 8192, so a sequential sum can differ in
    // the last bit and print differently on a tie. Goldens: numpy 1.24 on a[i] = ((i·7919) mod 1000) / 997.
    [Theory]
    [InlineData(7, 0.6159908296317523)]
    [InlineData(100, 0.4919759277833499)]      // a sequential sum gives 0.49197592778335
    [InlineData(1010, 0.5013605171951498)]     // 0.5013605171951497
    [InlineData(10000, 0.5010030090270812)]    // 0.5010030090270814
    [InlineData(20200, 0.5009632858972959)]    // 0.5009632858972954
    public void NumpyMean_IsNumpysSumOrder(int n, double numpy) =>
        Assert.Equal(numpy, CocoEvaluation.NumpyMean(Enumerable.Range(0, n).Select(i => (double)((long)i * 7919 % 1000) / 997.0).ToArray()));

    // The port's thresholds are numpy's (checked with numpy 1.24: linspace(.5, .95, 10) and linspace(0, 1, 101)).
    [Fact]
    public void PortThresholds_AreNumpyLinspace()
    {
        var p = new CocoEvalPort.Params();
        Assert.Equal(new[] { 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.8999999999999999, 0.95 }, p.iouThrs);
        var offByUlp = Enumerable.Range(0, 101).Where(r => p.recThrs[r] != r / 100.0).ToArray();
        Assert.Equal(new[] { 35, 41, 47, 57, 69, 70, 82, 83, 94, 95 }, offByUlp);
        Assert.Equal(p.iouThrs, MeanAveragePrecision.IouThresholds);
        Assert.Equal(p.recThrs, MeanAveragePrecision.RecallThresholds);
    }
}

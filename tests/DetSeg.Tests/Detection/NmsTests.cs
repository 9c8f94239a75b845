using DetSeg.Detection;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Detection;

public class NmsTests
{
    /// <summary>Plain greedy reference: per image and class, by score desc (ties: lower index first), drop IoU &gt; t with a kept box.</summary>
    static bool[,] ReferenceKeep(float[,,] boxes, float[,] scores, long[,] labels, double t, bool[,]? valid = null)
    {
        int b = boxes.GetLength(0), n = boxes.GetLength(1);
        var keep = new bool[b, n];
        static double Iou(float[,,] x, int i, int p, int q)
        {
            double iw = Math.Max(0, Math.Min(x[i, p, 2], x[i, q, 2]) - Math.Max(x[i, p, 0], x[i, q, 0]));
            double ih = Math.Max(0, Math.Min(x[i, p, 3], x[i, q, 3]) - Math.Max(x[i, p, 1], x[i, q, 1]));
            double a = (x[i, p, 2] - x[i, p, 0]) * (x[i, p, 3] - x[i, p, 1]), c = (x[i, q, 2] - x[i, q, 0]) * (x[i, q, 3] - x[i, q, 1]);
            double u = a + c - iw * ih;
            return u > 0 ? iw * ih / u : 0;
        }
        for (int i = 0; i < b; i++)
        {
            var order = Enumerable.Range(0, n).Where(j => valid is null || valid[i, j])
                .OrderByDescending(j => scores[i, j]).ThenBy(j => j).ToList();
            var kept = new List<int>();
            foreach (int j in order)
                if (!kept.Any(k => labels[i, k] == labels[i, j] && Iou(boxes, i, k, j) > t)) { kept.Add(j); keep[i, j] = true; }
        }
        return keep;
    }

    static float[,,] RandomBoxes(Random rng, int b, int n)
    {
        var x = new float[b, n, 4];
        for (int i = 0; i < b; i++)
            for (int j = 0; j < n; j++)
            {
                float cx = (float)rng.NextDouble(), cy = (float)rng.NextDouble();
                float w = 0.05f + 0.3f * (float)rng.NextDouble(), h = 0.05f + 0.3f * (float)rng.NextDouble();
                x[i, j, 0] = cx - w / 2; x[i, j, 1] = cy - h / 2; x[i, j, 2] = cx + w / 2; x[i, j, 3] = cy + h / 2;
            }
        return x;
    }

    static bool[,] ToArray(Tensor keep)
    {
        var flat = keep.cpu().data<bool>().ToArray();
        int b = (int)keep.shape[0], n = (int)keep.shape[1];
        var r = new bool[b, n];
        for (int i = 0; i < b; i++) for (int j = 0; j < n; j++) r[i, j] = flat[i * n + j];
        return r;
    }

    [Theory]
    [InlineData(1, 0.5, 5)]
    [InlineData(2, 0.3, 1)]
    [InlineData(3, 0.7, 3)]
    public void Keep_MatchesGreedyReference_OnRandomBoxesWithTies(int seed, double threshold, int numClasses)
    {
        var rng = new Random(seed);
        int b = 3, n = 300;
        var boxes = RandomBoxes(rng, b, n);
        var scores = new float[b, n]; var labels = new long[b, n]; var valid = new bool[b, n];
        for (int i = 0; i < b; i++)
            for (int j = 0; j < n; j++)
            {
                scores[i, j] = MathF.Round((float)rng.NextDouble(), 1); // few distinct values: many ties
                labels[i, j] = rng.Next(numClasses);
                valid[i, j] = rng.NextDouble() < 0.9;
            }
        var expected = ReferenceKeep(boxes, scores, labels, threshold, valid);
        var keep = BatchedNms.Keep(tensor(boxes), tensor(scores), tensor(labels), threshold, tensor(valid));
        Assert.Equal(expected, ToArray(keep));
        // the IoU-block path (what other devices run), also chunked into many small blocks, gives the same answer
        foreach (long chunk in new[] { BatchedNms.DefaultChunkElements, 1L })
            Assert.Equal(expected, ToArray(BatchedNms.Keep(tensor(boxes), tensor(scores), tensor(labels), threshold, tensor(valid), chunk, hostScan: false)));
        Assert.Equal(expected, ToArray(BatchedNms.Keep(tensor(boxes), tensor(scores), tensor(labels), threshold, tensor(valid), 1, hostScan: true)));
    }

    [Fact]
    public void Keep_HostScanAndBlockPath_AgreeOnDenseOutputs_WithNonFiniteAndDegenerateBoxes()
    {
        // YOLO-like: 3,000 boxes in 4 classes, half of them clustered (long suppression chains), plus NaN, ±inf,
        // empty and inverted boxes, which neither path may let suppress anything by accident
        var gen = manual_seed(11);
        int n = 3000;
        var cxcy = rand(1, n, 2, generator: gen) * 50; var wh = rand(1, n, 2, generator: gen) * 8 + 0.5;
        cxcy[0, TensorIndex.Slice(0, n / 2)] = cxcy[0, TensorIndex.Slice(0, n / 2)].div(10).add(20);
        var boxes = cat(new[] { cxcy - wh / 2, cxcy + wh / 2 }, -1);
        boxes[0, 5, 0] = float.NaN; boxes[0, 17, 2] = float.PositiveInfinity; boxes[0, 18, 0] = float.NegativeInfinity;
        boxes[0, 19] = tensor(new float[] { 21, 21, 21, 21 }); boxes[0, 20] = tensor(new float[] { 22, 22, 21, 21 });
        boxes[0, 21] = tensor(new float[] { float.NegativeInfinity, float.NegativeInfinity, float.PositiveInfinity, float.PositiveInfinity });
        var scores = rand(1, n, generator: gen).mul(20).round().div(20);                 // many ties
        var labels = randint(0, 4, new long[] { 1, n }, generator: gen);
        scores[0, 5] = 1; scores[0, 17] = 1; scores[0, 21] = 1;                          // non-finite boxes first in their class
        foreach (double t in new[] { 0.0, 0.3, 0.6, 1.0 })
        {
            var host = BatchedNms.Keep(boxes, scores, labels, t, null, BatchedNms.DefaultChunkElements, hostScan: true);
            var block = BatchedNms.Keep(boxes, scores, labels, t, null, BatchedNms.DefaultChunkElements, hostScan: false);
            Assert.Equal(ToArray(block), ToArray(host));
            if (t < 1) Assert.InRange(host.sum().item<long>(), 4, n - 1);                 // something kept, something suppressed
            else Assert.Equal(n, host.sum().item<long>());                                // IoU is never above 1
        }
    }

    [Fact]
    public void Keep_ComparesIouWithTheThresholdInFloat32_BothPaths()
    {
        // IoU = 3 / 5, which is 0.6f = 0.60000002 in float32; torch compares float32 IoU with the threshold rounded to
        // float32 (0.6 → 0.6f: not above, kept), 0.59999999 rounds to 0.59999996f (above: suppressed)
        var boxes = tensor(new float[,,] { { { 0, 0, 4, 1 }, { 1, 0, 5, 1 } } });
        var scores = tensor(new float[,] { { 0.9f, 0.8f } });
        foreach (bool hostScan in new[] { true, false })
        {
            Assert.Equal(new[] { true, true }, BatchedNms.Keep(boxes, scores, zeros(1, 2, dtype: int64), 0.6, null, 100, hostScan).data<bool>().ToArray());
            Assert.Equal(new[] { true, false }, BatchedNms.Keep(boxes, scores, zeros(1, 2, dtype: int64), 0.59999999, null, 100, hostScan).data<bool>().ToArray());
        }
        Assert.Throws<ArgumentException>(() => BatchedNms.Keep(boxes.to(float64), scores, zeros(1, 2, dtype: int64), 0.5, null, 100, hostScan: true));
    }

    [Fact]
    public void Keep_SuppressedBoxDoesNotSuppress_ChainKeepsFirstAndLast()
    {
        // IoU(A,B) = IoU(B,C) = 7/13 > 0.5, IoU(A,C) = 4/16: greedy keeps A and C (Fast-NMS would drop C)
        var boxes = tensor(new float[,,] { { { 0, 0, 10, 1 }, { 3, 0, 13, 1 }, { 6, 0, 16, 1 } } });
        var keep = BatchedNms.Keep(boxes, tensor(new float[,] { { 0.9f, 0.8f, 0.7f } }), zeros(1, 3, dtype: int64), 0.5);
        Assert.Equal(new[] { true, false, true }, keep[0].data<bool>().ToArray());
    }

    [Fact]
    public void Keep_TiesKeepLowerIndex_IouEqualToThresholdIsNotSuppressed_ClassesAndImagesIndependent()
    {
        var boxes = tensor(new float[,,] {
            { { 0, 0, 1, 1 }, { 0, 0, 1, 1 }, { 0, 0, 2, 1 }, { 0, 0, 1, 1 } },
            { { 0, 0, 1, 1 }, { 0, 0, 1, 1 }, { 5, 5, 6, 6 }, { 0, 0, 1, 1 } } });
        var scores = tensor(new float[,] { { 0.5f, 0.5f, 0.4f, 0.5f }, { 0.1f, 0.2f, 0.3f, 0.2f } });
        var labels = tensor(new long[,] { { 0, 0, 0, 1 }, { 0, 0, 0, 0 } });
        var keep = BatchedNms.Keep(boxes, scores, labels, 0.5);
        // image 0: box 1 ties box 0 and loses (index order); box 2 has IoU exactly 0.5 with box 0: kept; box 3 is another class
        Assert.Equal(new[] { true, false, true, true }, keep[0].data<bool>().ToArray());
        // image 1: box 1 (0.2) beats box 3 (0.2, tie, later index) and box 0
        Assert.Equal(new[] { false, true, true, false }, keep[1].data<bool>().ToArray());
    }

    [Fact]
    public void Keep_EmptyInputs_ReturnEmptyOrAllFalse()
    {
        var keep = BatchedNms.Keep(zeros(2, 0, 4), zeros(2, 0), zeros(2, 0, dtype: int64), 0.5);
        Assert.Equal(new long[] { 2, 0 }, keep.shape);
        var none = BatchedNms.Keep(rand(2, 5, 4), rand(2, 5), zeros(2, 5, dtype: int64), 0.5, zeros(2, 5, dtype: ScalarType.Bool));
        Assert.False(none.any().item<bool>());
        Assert.Equal(0, BatchedNms.Nms(zeros(0, 4), zeros(0), zeros(0, dtype: int64), 0.5).shape[0]);
        Assert.Throws<ArgumentException>(() => BatchedNms.Keep(zeros(2, 5, 3), zeros(2, 5), zeros(2, 5, dtype: int64), 0.5));
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void Keep_RejectsThresholdOutsideUnitInterval(double threshold)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => BatchedNms.Keep(rand(1, 3, 4), rand(1, 3), zeros(1, 3, dtype: int64), threshold));
        Assert.Equal("iouThreshold", e.ParamName);
    }

    [Fact]
    public void Keep_OneLargeClass_ScannedInRowBlocks_MatchesReference()
    {
        // 700 boxes of one class in one image: the IoU test runs in several row blocks (M/8 rows each)
        var rng = new Random(7);
        int n = 700;
        var boxes = RandomBoxes(rng, 1, n);
        var scores = new float[1, n]; var labels = new long[1, n];
        for (int j = 0; j < n; j++) scores[0, j] = (float)rng.NextDouble();
        var expected = ReferenceKeep(boxes, scores, labels, 0.45);
        Assert.Equal(expected, ToArray(BatchedNms.Keep(tensor(boxes), tensor(scores), tensor(labels), 0.45)));
        Assert.Equal(expected, ToArray(BatchedNms.Keep(tensor(boxes), tensor(scores), tensor(labels), 0.45, null, BatchedNms.DefaultChunkElements, hostScan: false)));
        Assert.Equal(expected, ToArray(BatchedNms.Keep(tensor(boxes), tensor(scores), tensor(labels), 0.45, null, 5000, hostScan: false)));
    }

    [Fact]
    public void Postprocess_PadsWithMinusOneLabels_AndSortsByAdjustedScore()
    {
        // image 0: two far-apart boxes; image 1: two identical boxes of the same class -> one survives
        var scores = tensor(new float[,] { { 0f, 2f }, { 0f, 1f } });
        var boxes = tensor(new float[,,] { { { 0.2f, 0.2f, 0.1f, 0.1f }, { 0.8f, 0.8f, 0.1f, 0.1f } }, { { 0.5f, 0.5f, 0.2f, 0.2f }, { 0.5f, 0.5f, 0.2f, 0.2f } } });
        var logits = tensor(new float[,,] { { { 5, 0 }, { 0, 5 } }, { { 5, 0 }, { 5, 0 } } });
        using var det = YOLOv3.Postprocess(scores, boxes, logits, 0.5);
        Assert.Equal(new long[] { 2, 2 }, det.Scores.shape);
        Assert.Equal(new long[] { 1, 0 }, det.Labels[0].data<long>().ToArray()); // box 1 (σ(2)) before box 0 (σ(0))
        Assert.Equal(new long[] { 0, -1 }, det.Labels[1].data<long>().ToArray());
        Assert.Equal(0f, det.Scores[1, 1].item<float>());
        Assert.Equal(new long[] { 2, 1 }, det.Counts());
        // adjusted score = max softmax prob × σ(objectness)
        double p = Math.Exp(5) / (Math.Exp(5) + 1);
        Assert.Equal(p / (1 + Math.Exp(-2)), det.Scores[0, 0].item<float>(), 5);
    }
    [Fact]
    public void Postprocess_MultiLabel_ReportsEveryClassAboveTheThreshold_AndSingleLabelOnlyTheMostLikely()
    {
        // one image, two predictions: box A is 60 % "0" / 40 % "1" (objectness 0.5), box B is sure of "2" (objectness 0.9)
        float lg(double p) => (float)Math.Log(Math.Max(p, 1e-30));
        var scores = tensor(new float[,] { { 0f, (float)Math.Log(0.9 / 0.1) } });
        var boxes = tensor(new float[,,] { { { 0.3f, 0.3f, 0.2f, 0.2f }, { 0.7f, 0.7f, 0.2f, 0.2f } } });
        var logits = tensor(new float[,,] { { { lg(0.6), lg(0.4), lg(0) }, { lg(0), lg(0), lg(1) } } });

        using var single = YOLOv3.Postprocess(scores, boxes, logits, 0.5, scoreThreshold: 0.1);
        Assert.Equal(new long[] { 2, 0 }, single.Labels[0].data<long>().ToArray());
        Assert.Equal(new[] { 0.9, 0.3 }, single.Scores[0].data<float>().ToArray().Select(v => Math.Round(v, 5)).ToArray());

        // multi-label: A also as "1" (0.4 × 0.5 = 0.2), on the very same box: NMS is per class, so it stays
        using var multi = YOLOv3.Postprocess(scores, boxes, logits, 0.5, scoreThreshold: 0.1, multiLabel: true);
        Assert.Equal(new long[] { 2, 0, 1 }, multi.Labels[0].data<long>().ToArray());
        Assert.Equal(new[] { 0.9, 0.3, 0.2 }, multi.Scores[0].data<float>().ToArray().Select(v => Math.Round(v, 5)).ToArray());
        Assert.Equal(multi.Boxes[0, 1].data<float>().ToArray(), multi.Boxes[0, 2].data<float>().ToArray());
        Assert.Equal(new[] { 0.3f, 0.3f, 0.2f, 0.2f }, multi.Boxes[0, 1].data<float>().ToArray());

        // a threshold above 0.2 drops the second label again
        using var strict = YOLOv3.Postprocess(scores, boxes, logits, 0.5, scoreThreshold: 0.25, multiLabel: true);
        Assert.Equal(new long[] { 2, 0 }, strict.Labels[0].data<long>().ToArray());
        // without a threshold every prediction would become C candidates: refused by name
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => YOLOv3.Postprocess(scores, boxes, logits, 0.5, multiLabel: true));
        Assert.Equal("scoreThreshold", e.ParamName);
    }
}

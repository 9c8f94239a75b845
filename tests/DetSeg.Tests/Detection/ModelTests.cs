using DetSeg.Detection;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Detection;

public class ModelTests
{
    static long Count(nn.Module m) => m.parameters().Sum(p => p.numel());

    // Golden parameter counts: ../shared/reference/baseline.json facts.param_counts (PyTorch reference).
    [Fact]
    public void Darknet53_FullSize_HasReferenceParameterCount() =>
        Assert.Equal(40_584_928, Count(new Darknet53(3)));

    [Fact]
    public void YOLOv3_80Classes_HasReferenceParameterCount() =>
        Assert.Equal(61_949_149, Count(new YOLOv3(3, 80)));

    [Fact]
    public void YOLOv3_10Classes_HasReferenceParameterCount_AndHeadsOnlyTrainableCount()
    {
        var model = new YOLOv3(3, 10);
        Assert.Equal(61_572_199, Count(model));
        Assert.Equal(6_277_511, Transfer.Freeze(model, FreezeMode.AllButHeads)); // yolov3_10_heads_only_trainable
        Assert.Equal(61_572_199 - 40_584_928, Transfer.Freeze(model, FreezeMode.Backbone));
        Assert.Equal(61_572_199, Transfer.Freeze(model, FreezeMode.None));
    }

    [Fact]
    public void Localizer_HasReferenceParameterCount_AndOutputShapes()
    {
        var m = new Localizer(3, 10);
        Assert.Equal(606_926, Count(m)); // localizer_3_10
        var (logits, boxes) = m.call(randn(2, 3, 128, 128));
        Assert.Equal(new long[] { 2, 10 }, logits.shape);
        Assert.Equal(new long[] { 2, 4 }, boxes.shape);
    }

    [Fact]
    public void Localizer_Loss_IsWeightedSum_AndRejectsBadBeta()
    {
        // logits 0 over 2 classes: CE = ln 2; boxes off by 1 in one of 4 values: MSE = 0.25
        var outputs = (zeros(1, 2), tensor(new float[,] { { 1, 0, 0, 0 } }));
        var truth = (tensor(new long[] { 1 }), zeros(1, 4));
        Assert.Equal(0.75 * Math.Log(2) + 0.25 * 0.25, Localizer.Loss(outputs, truth, 0.25).item<float>(), 5);
        Assert.Throws<ArgumentException>(() => Localizer.Loss(outputs, truth, 1.5));
        Assert.Throws<ArgumentException>(() => Localizer.Loss(outputs, truth, -0.1));
    }

    [Fact]
    public void SpreadDim_SplitsChannels_AndAppendsRest()
    {
        var x = arange(2 * 255 * 4).view(2, 255, 2, 2);
        var y = new SpreadDim(new long[] { 85 }, 1).call(x);
        Assert.Equal(new long[] { 2, 85, 3, 2, 2 }, y.shape);
        // channel = field * K + anchor: element (field 1, anchor 2) is channel 5
        Assert.Equal(x[0, 5, 1, 1].item<long>(), y[0, 1, 2, 1, 1].item<long>());
        Assert.Equal(new long[] { 2, 255, 2, 2 }, new SpreadDim(new long[] { 255 }, 1).call(x).shape);
        Assert.Throws<ArgumentException>(() => new SpreadDim(new long[] { 7 }, 1).call(x));
    }

    // Shapes from the course's test_yolo cell (seed output; baseline.json test_yolo_shapes_b2_416).
    [Fact]
    public void SimpleDetector_Shapes_For416()
    {
        using var _ = no_grad();
        var (y1, y2, y3) = new SimpleDetector(3, 3, 80).call(randn(2, 3, 416, 416));
        Assert.Equal(new long[] { 2, 85, 3, 13, 13 }, y1.shape);
        Assert.Equal(new long[] { 2, 85, 3, 26, 26 }, y2.shape);
        Assert.Equal(new long[] { 2, 85, 3, 52, 52 }, y3.shape);
    }

    [Fact]
    public void YOLOv3_TestYoloShapes_For416()
    {
        using var _ = no_grad();
        var model = new YOLOv3();
        model.eval();
        var x = randn(2, 3, 416, 416);
        var (y1, y2, y3) = model.yolo.call(x[..1]);
        Assert.Equal(new long[] { 1, 85, 3, 13, 13 }, y1.shape);
        Assert.Equal(new long[] { 1, 85, 3, 26, 26 }, y2.shape);
        Assert.Equal(new long[] { 1, 85, 3, 52, 52 }, y3.shape);
        var (scores, boxes, logits) = model.call(x);
        Assert.Equal(new long[] { 2, 10647 }, scores.shape);
        Assert.Equal(new long[] { 2, 10647, 4 }, boxes.shape);
        Assert.Equal(new long[] { 2, 10647, 80 }, logits.shape);
        using var det = YOLOv3.Postprocess(scores, boxes, logits, 0.6); // what Detect does after its forward
        long m = det.Scores.shape[1];
        Assert.InRange(m, 1, 10647);
        Assert.Equal(new long[] { 2, m, 4 }, det.Boxes.shape);
        Assert.Equal(new long[] { 2, m }, det.Labels.shape);
        // sorted by adjusted score, descending, per image
        var s = det.Scores[0];
        Assert.True((s[..^1] >= s[1..]).all().item<bool>());
    }

    [Fact]
    public void YOLOv3_RefusesSidesNotMultiplesOf32_NamingTheShape()
    {
        // 100 px gave grids 4/7/13 whose cells the decoder placed at stride 100/S, not 8/16/32.
        var model = new YOLOv3(3, 4, new ModelScale(0.125, 0.25));
        using var _ = no_grad();
        var e = Assert.Throws<ArgumentException>(() => model.call(randn(1, 3, 100, 100)));
        Assert.Contains("[1, 3, 100, 100]", e.Message);
        Assert.Contains("multiples of 32", e.Message);
        e = Assert.Throws<ArgumentException>(() => model.yolo.call(randn(1, 3, 64, 80)));
        Assert.Contains("[1, 3, 64, 80]", e.Message);
        Assert.Equal(3 * (2 * 2 + 4 * 4 + 8 * 8), model.call(randn(1, 3, 64, 64)).scores.shape[1]);
    }

    [Fact]
    public void Detect_RestoresTrainingMode_AndPadsWithMinusOne()
    {
        var model = new YOLOv3(3, 4, new ModelScale(0.125, 0.25));
        model.train();
        using var det = model.Detect(randn(2, 3, 64, 64), scoreThreshold: 0.3);
        Assert.True(model.training); // the course left the model in eval mode
        var counts = det.Counts();
        for (int i = 0; i < 2; i++)
            Assert.Equal(det.Labels.shape[1] - counts[i], (det.Labels[i] == -1).sum().item<long>());
    }

    [Fact]
    public void ModelScale_QuarterWidthDepth_GivesCourseReducedRepeats_AndRuns()
    {
        var scale = new ModelScale(0.25, 0.25);
        Assert.Equal(new[] { 1, 1, 2, 2, 1 }, new[] { 1, 2, 8, 8, 4 }.Select(scale.Repeats).ToArray());
        var model = new YOLOv3(3, 10, scale);
        Assert.True(Count(model) < 61_572_199 / 10);
        using var _ = no_grad();
        var (scores, boxes, logits) = model.call(randn(1, 3, 128, 128));
        Assert.Equal(3 * (4 * 4 + 8 * 8 + 16 * 16), scores.shape[1]);
        Assert.Equal(new long[] { 1, 1008, 10 }, logits.shape);
        Assert.Throws<ArgumentException>(() => new ModelScale(0, 1).Channels(32));
    }

    [Fact]
    public void ToBoundingBoxes_DecodesZeroOutputsToCellCentresAndAnchorSizes()
    {
        // t = 0: centre = (0.5 + c) / S, size = anchor / image size (hand computation)
        var det = zeros(new long[] { 1, 5 + 2, 1, 2, 2 });
        var anchors = tensor(new float[,] { { 32, 16 } });
        var (scores, boxes, logits) = YOLOv3.ToBoundingBoxes(det, anchors, 64, 64);
        Assert.Equal(new long[] { 1, 4 }, scores.shape);
        Assert.Equal(new long[] { 1, 4, 2 }, logits.shape);
        var b = boxes[0];
        // index (k·Sy + y)·Sx + x; index 1 is x = 1, y = 0
        Assert.Equal(new[] { 0.75f, 0.25f, 0.5f, 0.25f }, b[1].data<float>().ToArray());
        Assert.Equal(new[] { 0.25f, 0.75f, 0.5f, 0.25f }, b[2].data<float>().ToArray());
    }

    [Fact]
    public void YOLOv3_RejectsWrongInputChannels_AndBadAnchors()
    {
        var model = new YOLOv3(3, 2, new ModelScale(0.125, 0.25));
        Assert.Throws<ArgumentException>(() => model.call(randn(1, 1, 64, 64)));
        Assert.Throws<ArgumentException>(() => new YOLOv3(3, 2, new ModelScale(0.125, 0.25), zeros(2, 3, 2)));
    }
}

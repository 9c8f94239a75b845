using DetSeg.Detection;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Detection;

[Collection(GlobalRng.Name)]
public class LossTests
{
    static readonly double Ln2 = Math.Log(2);

    // 32-pixel images: sets of 1x1, 2x2 and 4x4 cells, one anchor each (32, 16 and 8 px): N = 1 + 4 + 16 = 21.
    static Tensor TinyAnchors() => tensor(new float[,,] { { { 32, 32 } }, { { 16, 16 } }, { { 8, 8 } } });

    static (Tensor boxes, Tensor labels) OneTarget() =>
        (tensor(new float[,,] { { { 0.3f, 0.3f, 0.25f, 0.25f }, { 0, 0, 0, 0 } } }), tensor(new long[,] { { 1, -1 } }));

    /// <summary>Predictions far from the target everywhere, except position 10 (set 2, cell x=1,y=1), which is
    /// off by 0.05 in x and by a factor e^0.1 in width; objectness and class logits all 0.</summary>
    static (Tensor, Tensor, Tensor) Predictions()
    {
        var boxes = tensor(new[] { 0.9f, 0.9f, 0.01f, 0.01f }).repeat(1, 21, 1);
        boxes[0, 10] = tensor(new[] { 0.35f, 0.3f, 0.25f * MathF.Exp(0.1f), 0.25f });
        return (zeros(1, 21), boxes, zeros(1, 21, 2));
    }

    [Fact]
    public void ConvertToYoloFormat_PutsBoxAtSetOffsetPlusCell()
    {
        var loss = new CustomYOLOv3Loss(32, TinyAnchors());
        var (boxes, labels) = OneTarget();
        var (tb, tl, scale) = loss.ConvertToYoloFormat(boxes, labels);
        // 8 px box -> the 8 px anchor of set 2 (S = 4); cell (1, 1): 1 + 4 (set offset) + 1·4 + 1 = 10
        Assert.Equal(new long[] { 1, 21 }, tl.shape);
        Assert.Equal(10, tl[0].argmax().item<long>());
        Assert.Equal(1, tl[0, 10].item<long>());
        Assert.Equal(20, (tl == -1).sum().item<long>());
        Assert.Equal(4f, scale[0, 10].item<float>());
        Assert.True(tb[0, 10].allclose(boxes[0, 0]));
    }

    [Fact]
    public void Terms_MatchHandComputedValues_GridCellUnits()
    {
        var loss = new CustomYOLOv3Loss(32, TinyAnchors());
        var t = loss.Terms(Predictions(), OneTarget());
        double factor = 2 - 0.25 * 0.25;                      // 1.9375
        Assert.Equal(1, t.NumTargets);
        Assert.Equal(Ln2, t.Obj.item<float>(), 5);            // BCE(0, 1)
        Assert.Equal(20 * Ln2, t.NoObj.item<float>(), 4);     // 20 other positions, none above ignoreIou
        Assert.Equal(factor * Math.Pow(0.05 * 4, 2), t.Xy.item<float>(), 5);   // 0.05 image = 0.2 cells
        Assert.Equal(factor * 0.01, t.Wh.item<float>(), 5);   // (log e^0.1)^2
        Assert.Equal(Ln2, t.Cls.item<float>(), 5);            // CE of two equal logits
        Assert.Equal(Ln2 + 0.5 * 20 * Ln2 + factor * (0.04 + 0.01) + Ln2, t.Total.item<float>(), 4);
    }

    [Fact]
    public void Terms_CompleteIouBox_AndIouObjectness_MatchHandComputedValues()
    {
        // CIoU of the responsible prediction (0.35, 0.3, 0.25·e^0.1, 0.25) with its target (0.3, 0.3, 0.25, 0.25),
        // by the paper's formula in double precision (IoU − ρ²/c² − α·v): 0.66508689. Box term 2·(2 − w·h)·(1 − CIoU).
        // With objectness logit 1 and target CIoU: BCE = 1 − t + ln(1 + e^-1).
        const double ciou = 0.6650868873550706;
        var loss = new CustomYOLOv3Loss(32, TinyAnchors(), box: BoxLoss.CompleteIou, objectness: ObjectnessTarget.Iou);
        var (s, b, l) = Predictions();
        s[0, 10] = tensor(1f);
        var t = loss.Terms((s, b, l), OneTarget());
        Assert.Equal(2 * (2 - 0.0625) * (1 - ciou), t.Xy.item<float>(), 5);
        Assert.Equal(0.0, t.Wh.item<float>());
        Assert.Equal(1 - ciou + Math.Log(1 + Math.Exp(-1)), t.Obj.item<float>(), 5);
        // The course's objectness target (1) for the same logit: ln(1 + e^-1).
        var courseObj = new CustomYOLOv3Loss(32, TinyAnchors(), box: BoxLoss.CompleteIou).Terms((s, b, l), OneTarget()).Obj;
        Assert.Equal(Math.Log(1 + Math.Exp(-1)), courseObj.item<float>(), 5);
    }

    [Fact]
    public void Terms_ImageUnits_AreTheCourseXyError()
    {
        var loss = new CustomYOLOv3Loss(32, TinyAnchors(), centre: CentreUnits.Image);
        Assert.Equal((2 - 0.0625) * 0.0025, loss.Terms(Predictions(), OneTarget()).Xy.item<float>(), 6);
    }

    [Fact]
    public void Terms_PredictionOverlappingTruth_IsIgnoredInNoObject()
    {
        var (s, b, l) = Predictions();
        b[0, 12] = tensor(new[] { 0.3f, 0.3f, 0.25f, 0.25f });  // a second prediction right on the true box
        var loss = new CustomYOLOv3Loss(32, TinyAnchors());
        Assert.Equal(19 * Ln2, loss.Terms((s, b, l), OneTarget()).NoObj.item<float>(), 4);
        var strict = new CustomYOLOv3Loss(32, TinyAnchors(), ignoreIou: 1.0);
        Assert.Equal(20 * Ln2, strict.Terms((s, b, l), OneTarget()).NoObj.item<float>(), 4);
    }

    [Fact]
    public void AssignAnchors_SizeIouPicksTheMatchingFineAnchor_CourseRulePicksCoarsest()
    {
        // MNIST-clutter anchors at 128 px (baseline.json mc_anchors); a 12x16 px box
        var mc = tensor(new float[,,] { { { 16, 27 }, { 21, 23 }, { 26, 20 } }, { { 11, 23 }, { 16, 20 }, { 21, 16 } }, { { 6, 20 }, { 11, 16 }, { 16, 12 } } });
        var box = tensor(new float[,,] { { { 0.5f, 0.5f, 12 / 128f, 16 / 128f }, { 0.5f, 0.5f, 25 / 128f, 21 / 128f } } });
        var (set, anchor) = new CustomYOLOv3Loss(128, mc).AssignAnchors(box);
        Assert.Equal(new long[] { 2, 0 }, set[0].data<long>().ToArray());    // 12x16 -> (11,16): IoU 176/192
        Assert.Equal(new long[] { 1, 2 }, anchor[0].data<long>().ToArray()); // 25x21 -> (26,20): IoU 500/545
        var (cset, canchor) = new CustomYOLOv3Loss(128, mc, assignment: AnchorAssignment.MaxIntersection).AssignAnchors(box);
        Assert.Equal(new long[] { 0, 0 }, cset[0].data<long>().ToArray());   // ties -> first anchor of the coarsest set
    }

    [Fact]
    public void Terms_RejectWrongPredictionCount_AndNoTargetsGiveOnlyNoObject()
    {
        var loss = new CustomYOLOv3Loss(32, TinyAnchors());
        Assert.Throws<ArgumentException>(() => loss.Terms((zeros(1, 20), zeros(1, 20, 4), zeros(1, 20, 2)), OneTarget()));
        var (s, b, l) = Predictions();
        var t = loss.Terms((s, b, l), (zeros(1, 2, 4), full(1, 2, -1L)));
        Assert.Equal(0, t.NumTargets);
        Assert.Equal(0.5 * 21 * Ln2, t.Total.item<float>(), 4);
    }

    [Fact]
    public void Loss_Backpropagates_OneTinyStepLowersIt()
    {
        manual_seed(0);
        var model = new YOLOv3(3, 2, new ModelScale(0.125, 0.25), TinyAnchors());
        var loss = new CustomYOLOv3Loss(32, model.anchors);
        var x = rand(1, 3, 32, 32);
        var opt = optim.Adam(model.parameters(), 1e-3);
        double first = 0, last = 0;
        for (int i = 0; i < 5; i++)
        {
            opt.zero_grad();
            var l = loss.call(model.call(x), OneTarget());
            if (i == 0) first = l.item<float>();
            last = l.item<float>();
            l.backward(); opt.step();
        }
        Assert.True(last < first, $"loss {first} -> {last}");
    }
}

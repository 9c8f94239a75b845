using DetSeg.Detection;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Detection;

public class BoxOpsTests
{
    [Fact]
    public void Conversions_RoundTrip_AndMatchHandValues()
    {
        var c = tensor(new float[,] { { 0.78f, 0.8f, 0.24f, 0.3f } }); // the course's example box
        var x = BoxOps.CxCyWhToXyxy(c);
        Assert.Equal(new[] { 0.66f, 0.65f, 0.9f, 0.95f }, x[0].data<float>().ToArray().Select(v => MathF.Round(v, 5)).ToArray());
        Assert.True(BoxOps.XyxyToCxCyWh(x).allclose(c, 1e-6, 1e-6));
        Assert.Throws<ArgumentException>(() => BoxOps.CxCyWhToXyxy(zeros(2, 3)));
    }

    [Fact]
    public void ToMask_PutsYOnRows_AndMaskIouEqualsBoxIou()
    {
        // Box A (x 2..10, y 1..7) is 8 wide and 6 tall: 6 rows x 8 columns of ones. B: x 5..14, y 3..12.
        // By hand: |A| = 48, |B| = 81, A∩B = (10-5)·(7-3) = 20, IoU = 20 / 109.
        var a = tensor(new float[] { 2, 1, 10, 7 });
        var b = tensor(new float[] { 5, 3, 14, 12 });
        var ma = BoxOps.ToMask(a, 16, 16);
        Assert.Equal(new long[] { 16, 16 }, ma.shape);
        Assert.Equal(48, ma.sum().item<long>());
        Assert.Equal(8, ma[1].sum().item<long>());           // row y=1 is inside: 8 columns
        Assert.Equal(0, ma[7].sum().item<long>());           // y_max is exclusive
        Assert.Equal(6, ma[.., 2].sum().item<long>());       // column x=2: 6 rows
        var m = new DetSeg.Metrics.ClassificationMetrics(2);
        m.Update(BoxOps.ToMask(b, 16, 16), ma);
        Assert.Equal(20.0 / 109, m.IoU[1].item<double>(), 1e-9);
        Assert.Equal(20.0 / 109, BoxOps.Iou(a.unsqueeze(0), b.unsqueeze(0)).item<float>(), 1e-6);
        Assert.Throws<ArgumentException>(() => BoxOps.ToMask(tensor(new float[] { 0, 0, 1 }), 4, 4));
    }

    [Fact]
    public void Iou_HandComputedValues()
    {
        var a = tensor(new float[,] { { 0, 0, 2, 2 }, { 0, 0, 0, 0 } });
        var b = tensor(new float[,] { { 1, 1, 3, 3 }, { 0, 0, 2, 2 }, { 5, 5, 6, 6 } });
        var iou = BoxOps.Iou(a, b);
        Assert.Equal(new long[] { 2, 3 }, iou.shape);
        Assert.Equal(1.0 / 7, iou[0, 0].item<float>(), 6);   // inter 1, union 4 + 4 - 1
        Assert.Equal(1.0, iou[0, 1].item<float>(), 6);
        Assert.Equal(0.0, iou[0, 2].item<float>(), 6);
        Assert.Equal(0.0, iou[1, 1].item<float>(), 6);        // empty box: 0, not NaN
        Assert.Equal(0.0, BoxOps.Iou(a[1..], a[1..]).item<float>(), 6);
    }

    [Fact]
    public void BestIou_KeepsBatchItemsIndependent_AndIgnoresPadding()
    {
        // pred box equals the truth of image 1 only; image 0's truth is elsewhere
        var pred = tensor(new float[,,] { { { 0.5f, 0.5f, 0.2f, 0.2f } }, { { 0.5f, 0.5f, 0.2f, 0.2f } } });
        var truth = tensor(new float[,,] { { { 0.1f, 0.1f, 0.1f, 0.1f }, { 0.5f, 0.5f, 0.2f, 0.2f } }, { { 0.5f, 0.5f, 0.2f, 0.2f }, { 0, 0, 0, 0 } } });
        var valid = tensor(new bool[,] { { true, false }, { true, false } });
        var best = BoxOps.BestIou(pred, truth, valid);
        Assert.Equal(0.0, best[0, 0].item<float>(), 6);   // the matching box of image 0 is padding
        Assert.Equal(1.0, best[1, 0].item<float>(), 6);
    }

    [Fact]
    public void SizeIou_IsIouOfCentredBoxes()
    {
        var iou = BoxOps.SizeIou(tensor(new float[,] { { 2, 4 } }), tensor(new float[,] { { 2, 4 }, { 4, 2 }, { 1, 1 } }));
        Assert.Equal(new[] { 1f, 4f / 12f, 1f / 8f }, iou[0].data<float>().ToArray().Select(v => MathF.Round(v, 6)).ToArray(), new FloatTol());
    }

    [Fact]
    public void CompleteIou_MatchesThePapersFormula_ByHand()
    {
        // Shifted equal squares: IoU 1/3, ρ² = 0.01, enclosing diagonal² = 0.3² + 0.2² = 0.13, v = 0 → 1/3 − 0.01/0.13.
        // Crossed 0.2x0.4 / 0.4x0.2 boxes, same centre: IoU 1/3, ρ = 0, v = 4/π²·(atan 2 − atan 0.5)², α = v/(2/3 + v).
        double v = 4 / (Math.PI * Math.PI) * Math.Pow(Math.Atan(2) - Math.Atan(0.5), 2);
        var a = tensor(new float[,] { { 0.5f, 0.5f, 0.2f, 0.2f }, { 0.5f, 0.5f, 0.2f, 0.4f }, { 0.3f, 0.6f, 0.1f, 0.3f } });
        var b = tensor(new float[,] { { 0.6f, 0.5f, 0.2f, 0.2f }, { 0.5f, 0.5f, 0.4f, 0.2f }, { 0.3f, 0.6f, 0.1f, 0.3f } });
        var ciou = BoxOps.CompleteIou(a, b);
        Assert.Equal(new long[] { 3 }, ciou.shape);
        Assert.Equal(1.0 / 3 - 0.01 / 0.13, ciou[0].item<float>(), 5);
        Assert.Equal(1.0 / 3 - v / (2.0 / 3 + v) * v, ciou[1].item<float>(), 5);
        Assert.Equal(1.0, ciou[2].item<float>(), 5);                       // equal boxes
        // Gradients flow to the prediction (not through α) and are finite for disjoint boxes too.
        var p = tensor(new float[] { 0.2f, 0.2f, 0.1f, 0.1f }).requires_grad_();
        var q = tensor(new float[] { 0.8f, 0.8f, 0.1f, 0.2f });
        var far = BoxOps.CompleteIou(p, q);
        Assert.True(far.item<float>() < 0);                                // no overlap: only the distance and aspect terms
        far.backward();
        Assert.True(p.grad!.isfinite().all().item<bool>() && p.grad.abs().sum().item<float>() > 0);
        Assert.Throws<ArgumentException>(() => BoxOps.CompleteIou(zeros(2, 3), zeros(2, 4)));
    }

    sealed class FloatTol : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) < 1e-5;
        public int GetHashCode(float v) => 0;
    }
}

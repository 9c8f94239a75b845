using DetSeg.Metrics;
using DetSeg.Segmentation;
using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Segmentation;

public class SegmentationLossTests
{
    [Fact]
    public void Compute_IsTheWeightedMeanOverNonIgnoredPixels()
    {
        // One image 1x3: pixel 0 class 0, pixel 1 class 1, pixel 2 ignored (-1). Logits per pixel (c0, c1).
        var logits = tensor(new float[] { 2, 0, 5, /* c1: */ 0, 1, -5 }).reshape(1, 2, 1, 3);
        var masks = tensor(new long[] { 0, 1, -1 }).reshape(1, 1, 3);
        // Hand computation: l0 = -log softmax(2,0)[0], l1 = -log softmax(0,1)[1]; weights 1 and 2: (1·l0 + 2·l1) / 3.
        double l0 = Math.Log(1 + Math.Exp(-2)), l1 = Math.Log(1 + Math.Exp(-1));
        double expected = (1 * l0 + 2 * l1) / 3;
        Assert.Equal(expected, SegmentationLoss.Compute(logits, masks).item<float>(), 5);
        // Changing the ignored pixel's logits changes nothing.
        var other = logits.clone();
        other[0, .., 0, 2] = tensor(new float[] { -9, 9 });
        Assert.Equal(expected, SegmentationLoss.Compute(other, masks).item<float>(), 5);
        // Equal weights: plain mean of the two.
        Assert.Equal((l0 + l1) / 2, SegmentationLoss.Compute(logits, masks, [1.0, 1.0]).item<float>(), 5);
    }

    [Fact]
    public void Compute_WithWeightsOnTheDevice_EqualsTheFlattenedPixelLoss()
    {
        // The [B x C x H x W] form must be the per-pixel weighted mean that the flattened [B·H·W x C] form computes.
        var g = new Generator(5);
        var logits = randn(new long[] { 2, 3, 4, 5 }, generator: g);
        var masks = randint(-1, 3, new long[] { 2, 4, 5 }, generator: g);
        double[] w = [0.5, 1.0, 3.0];
        using var weight = SegmentationLoss.Weights(3, w, CPU);
        var flat = nn.functional.cross_entropy(logits.permute(0, 2, 3, 1).reshape(-1, 3), masks.flatten(), weight: weight, ignore_index: -1);
        Assert.Equal(flat.item<float>(), SegmentationLoss.ComputeWithWeight(logits, masks, weight).item<float>(), 5);
        Assert.Equal(flat.item<float>(), SegmentationLoss.Compute(logits, masks, w).item<float>(), 5);
        var e = Assert.Throws<ArgumentException>(() => SegmentationLoss.ComputeWithWeight(logits, masks, SegmentationLoss.Weights(2, null, CPU)));
        Assert.Contains("3 classes", e.Message);
    }

    [Fact]
    public void Compute_ShapeMismatch_NamesBothShapes()
    {
        var e = Assert.Throws<ArgumentException>(() => SegmentationLoss.Compute(zeros(2, 2, 4, 4), zeros(2, 5, 4, ScalarType.Int64)));
        Assert.Contains("[2, 2, 4, 4]", e.Message);
        Assert.Contains("[2, 5, 4]", e.Message);
        Assert.Throws<ArgumentException>(() => SegmentationLoss.Compute(zeros(1, 3, 4, 4), zeros(1, 4, 4, ScalarType.Int64), [1.0, 2.0]));
    }

    [Fact]
    public void OneEpoch_ReportsLossAndPixelMetrics_IgnoringPadding()
    {
        torch.manual_seed(3);
        var model = new SemanticSegmentor(3, 2, width: 2);
        var images = randn(4, 3, 16, 16);
        var masks = (images[.., 0] > 0).to(ScalarType.Int64);
        masks[.., 0] = tensor(-1L); // first row is "padding"
        List<Tensor[]> loader = [[images[..2], masks[..2]], [images[2..], masks[2..]]];
        var opt = optim.Adam(model.parameters(), 1e-2);
        var trainer = SegmentationTraining.CreateTrainer(model, opt, numClasses: 2, device: CPU);
        var train = trainer.OneEpoch(Phase.Training, loader);
        var val = trainer.OneEpoch(Phase.Validation, loader);
        Assert.Equal(4, val.NumImages);
        Assert.True(double.IsFinite(train.Loss));
        Assert.InRange(val["mean_iou"], 0.0, 1.0);
        // 4 images x 15 valid rows x 16 columns: the -1 row is not counted.
        Assert.Equal(4 * 15 * 16, trainer.Metrics.Total.item<long>());
        // The loss the trainer reports is the loss of the same model computed by hand on the same batches.
        model.eval();
        using (no_grad())
        {
            double byHand = (SegmentationLoss.Compute(model.call(images[..2]), masks[..2]).item<float>() * 2
                           + SegmentationLoss.Compute(model.call(images[2..]), masks[2..]).item<float>() * 2) / 4;
            Assert.Equal(byHand, val.Loss, 5);
        }
    }

    [Fact]
    public void Predict_ReturnsArgmaxMasks_AndKeepsTheModelMode()
    {
        var model = new SemanticSegmentor(3, 2, width: 2);
        model.train();
        var p = SegmentationTraining.Predict(model, randn(3, 16, 16));
        Assert.Equal(new long[] { 1, 16, 16 }, p.shape);
        Assert.Equal(ScalarType.Int64, p.dtype);
        Assert.True(model.training);
    }
}

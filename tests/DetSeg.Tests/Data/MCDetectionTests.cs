using DetSeg.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Data;

public class MCDetectionTests
{
    static readonly torch.Device Cpu = new(DeviceType.CPU);

    /// <summary>6 rows x 8 columns, background -1; id 23 covers rows 1..2, columns 2..4; id 5 is the single pixel (4, 7).</summary>
    static Tensor HandMask()
    {
        var m = full(new long[] { 6, 8 }, -1L);
        m[TensorIndex.Slice(1, 3), TensorIndex.Slice(2, 5)] = tensor(23L);
        m[4, 7] = tensor(5L);
        return m;
    }

    [Fact]
    public void Boxes_FitTheObjectExactly_SortedById_Padded()
    {
        // Hand computation: id 5 spans column 7 and row 4 -> cx = 7.5/8, cy = 4.5/6, w = 1/8, h = 1/6;
        // id 23 spans columns 2..4 and rows 1..2 -> cx = 3.5/8, cy = 2/6, w = 3/8, h = 2/6.
        var (boxes, labels) = MCDetection.MaskToBoundingBoxes(HandMask(), maxObjectsPerClass: 10, maxObjects: 3);
        float[] expected = [7.5f / 8, 4.5f / 6, 1f / 8, 1f / 6, 3.5f / 8, 2f / 6, 3f / 8, 2f / 6, 0, 0, 0, 0];
        Assert.Equal(new long[] { 3, 4 }, boxes.shape);
        Assert.Equal(expected, boxes.data<float>().ToArray(), new FloatTolerance(1e-6f));
        Assert.Equal(new long[] { 0, 2, -1 }, labels.data<long>().ToArray());
    }

    [Fact]
    public void SeedCompat_ReproducesTheSeedsOnePixelShortBoxes()
    {
        // The seed: w = (x_max - x_min) / W, cx = (x_min + (x_max - x_min) / 2) / W; a 1-pixel object gets w = 0.
        var (boxes, _) = MCDetection.MaskToBoundingBoxes(HandMask(), maxObjectsPerClass: 10, seedCompat: true);
        float[] expected = [7f / 8, 4f / 6, 0, 0, 3f / 8, 1.5f / 6, 2f / 8, 1f / 6];
        Assert.Equal(expected, boxes.data<float>().ToArray(), new FloatTolerance(1e-6f));
    }

    [Fact]
    public void BatchedMasks_GiveThePerMaskBoxes_AndTooManyObjectsIsAnError()
    {
        var empty = full(new long[] { 6, 8 }, -1L);
        var (boxes, labels) = MCDetection.MaskToBoundingBoxes(stack([HandMask(), empty]), 10);
        Assert.Equal(new long[] { 2, 2, 4 }, boxes.shape);
        Assert.Equal(new long[] { 0, 2, -1, -1 }, labels.data<long>().ToArray());
        Assert.Equal(0f, boxes[1].abs().sum().item<float>());
        Assert.Throws<ArgumentException>(() => MCDetection.MaskToBoundingBoxes(HandMask(), 10, maxObjects: 1));
        Assert.Throws<ArgumentException>(() => MCDetection.MaskToBoundingBoxes(HandMask().to(ScalarType.Int32)));
    }

    [Fact]
    public void Items_HaveContractShapes_AndBatchEqualsItems()
    {
        using var mnist = new MNIST(Fixtures.MnistFolder(20), download: false);
        var ds = new MCDetection(new MNISTClutter(imageSize: 64, maxNumDigits: 5, mnist: mnist, device: Cpu));
        var item = ds[3];
        Assert.Equal(new long[] { 3, 64, 64 }, item[0].shape);
        Assert.Equal(new long[] { 5, 4 }, item[1].shape);
        Assert.Equal(new long[] { 5 }, item[2].shape);
        Assert.Equal(ScalarType.Int64, item[2].dtype);
        var batch = ds.GetBatch([1, 3]);
        Assert.True(batch[1][1].allclose(item[1]) && batch[2][1].equal(item[2]).all().item<bool>());
        // plain NCHW: a channels-last batch crashed libtorch's oneDNN conv with SIGFPE on the Zen 5 machine
        Assert.True(batch[0].is_contiguous(), "GetBatch images must be contiguous NCHW");
        Assert.Throws<ArgumentException>(() => new MCDetection(new MNISTClutter(instance: false, mnist: mnist, device: Cpu)));
    }

    [SkippableFact]
    public void Item0_WithThreeDigits_MatchesTheSeed()
    {
        Skip.If(TestPaths.SharedData is null, "../shared/data is not present");
        using var mnist = new MNIST(Path.Combine(TestPaths.SharedData!, "MNIST"), download: false);
        var clutter = new MNISTClutter(maxNumDigits: 3, mnist: mnist, device: Cpu);
        // Golden: baseline.json facts.mcdet3_item0 (seed_ref.py MCDetection(MNISTClutter(max_num_digits=3))[0]).
        var seed = new MCDetection(clutter, seedCompat: true)[0];
        float[] seedBoxes = [0.585938f, 0.605469f, 0.15625f, 0.117188f, 0.261719f, 0.808594f, 0.085938f, 0.179688f, 0.539062f, 0.894531f, 0.078125f, 0.132812f];
        Assert.Equal(seedBoxes, seed[1].data<float>().ToArray(), new FloatTolerance(1e-5f));
        Assert.Equal(new long[] { 1, 6, 9 }, seed[2].data<long>().ToArray());
        Assert.Equal(547.741, seed[0].sum().item<float>(), 2);
        // The fixed boxes are one pixel wider and taller, their centres half a pixel further right and down.
        var fixedBoxes = new MCDetection(clutter)[0][1];
        var shift = tensor(new float[] { 0.5f / 128, 0.5f / 128, 1f / 128, 1f / 128 });
        Assert.True(fixedBoxes.sub(seed[1]).allclose(shift.expand(3, 4), atol: 1e-6));
    }

    sealed class FloatTolerance(float tol) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tol;
        public int GetHashCode(float v) => 0;
    }

    [Fact]
    public void Batches_FromTheDrawnIds_EqualThePerImageUniquePath_HiddenDigitsIncluded()
    {
        // GetBatch takes the candidate ids from the renderer instead of one unique() per mask; a digit painted over
        // entirely has no pixel left and must drop out exactly as unique() drops it.
        using var mnist = new MNIST(Fixtures.MnistFolder(20), download: false);
        var clutter = new MNISTClutter(instance: true, imageSize: 40, maxNumDigits: 6, mnist: mnist, device: Cpu);
        var ds = new MCDetection(clutter);
        var indices = Enumerable.Range(0, clutter.Count).ToList();
        var batch = ds.GetBatch(indices);
        var masks = clutter.GetBatch(indices)[1];                                            // [B x S x S] instance ids
        var (boxes, labels) = MCDetection.MaskToBoundingBoxes(masks, clutter.MaxNumDigits, clutter.MaxNumDigits);
        Assert.Equal(labels.data<long>().ToArray(), batch[2].data<long>().ToArray());
        Assert.Equal(boxes.data<float>().ToArray(), batch[1].data<float>().ToArray());
        // the tensor path (GPUs), run here on the CPU, and both in the seed's convention
        var draws = indices.Select(clutter.Layout).ToArray();
        var candidates = draws.SelectMany(d => d.Select(x => x.Id).Distinct().Order().Concat(Enumerable.Repeat(-2L, 6)).Take(6)).ToArray();
        var (tBoxes, tLabels) = MCDetection.BoxesWithTensors(masks, candidates, 6, 6, seedCompat: false);
        Assert.Equal(boxes.data<float>().ToArray(), tBoxes.data<float>().ToArray());
        Assert.Equal(labels.data<long>().ToArray(), tLabels.data<long>().ToArray());
        var (seedBoxes, _) = MCDetection.MaskToBoundingBoxes(masks, 6, 6, seedCompat: true);
        Assert.Equal(seedBoxes.data<float>().ToArray(), new MCDetection(clutter, seedCompat: true).GetBatch(indices)[1].data<float>().ToArray());
        Assert.Equal(seedBoxes.data<float>().ToArray(), MCDetection.BoxesWithTensors(masks, candidates, 6, 6, seedCompat: true).Boxes.data<float>().ToArray());
        // The case that matters occurred: some image shows fewer digits than were drawn on it.
        var shown = (batch[2] >= 0).sum(1).data<long>().ToArray();
        Assert.Contains(indices, i => shown[i] < clutter.Layout(i).Length);
    }
}

using DetSeg.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Data;

public class PFSegmentationTests
{
    static readonly torch.Device Cpu = new(DeviceType.CPU);

    [Fact]
    public void SquareImage_PadsAndResizesLikePilImageOpsPad()
    {
        // Hand computation of ImageOps.pad(2x4 image -> 4x4, NEAREST): width already 4, new height round(2/4*4) = 2,
        // pasted at y = round((4 - 2) / 2) = 1; rows 0 and 3 are fill.
        var img = arange(8, ScalarType.Int64).view(2, 4);
        var sq = PFSegmentation.SquareImage(img, 4, -1);
        Assert.Equal(new long[] { -1, -1, -1, -1, 0, 1, 2, 3, 4, 5, 6, 7, -1, -1, -1, -1 }, sq.data<long>().ToArray());
        // Downsizing 3 columns -> 2 (a 1x3 image into a 2x2 canvas): PIL picks floor((i + 0.5) * 3 / 2) = 0, 2; height round(1/3*2) = 1 at y = round(0.5) = 0.
        var row = tensor(new long[] { 10, 11, 12 }).view(1, 3);
        Assert.Equal(new long[] { 10, 12, 0, 0 }, PFSegmentation.SquareImage(row, 2, 0).data<long>().ToArray());
    }

    [Fact]
    public void EvalItem_IsNormalizedImageAndSemanticMaskWithPaddingMinusOne()
    {
        var ds = new PFSegmentation(new PennFudan(Fixtures.PennFudanFolder(2), download: false), imageSize: 16, device: Cpu);
        var item = ds[1];   // fixture image 9 x 6 (w x h) with mask ids 0..2 by column
        Assert.Equal(new long[] { 3, 16, 16 }, item[0].shape);
        Assert.Equal(new long[] { 16, 16 }, item[1].shape);
        Assert.Equal(ScalarType.Int64, item[1].dtype);
        // new height round(6/9*16) = 11 at y = round(2.5) = 2: rows 0-1 and 13-15 are padding.
        Assert.True(item[1][TensorIndex.Slice(0, 2)].eq(-1).all().item<bool>());
        Assert.True(item[1][TensorIndex.Slice(13, 16)].eq(-1).all().item<bool>());
        var inside = item[1][TensorIndex.Slice(2, 13)];
        Assert.True(inside.ge(0).all().item<bool>());
        Assert.Equal(new long[] { 0, 1 }, inside.unique().Item1.data<long>().ToArray());
        // padding is grey 128 after normalization
        Assert.Equal((128f / 255 - 0.4398f) / 0.2635f, item[0][0, 0, 0].item<float>(), 5);
        // eval mode is deterministic
        Assert.True(ds[1][0].equal(item[0]).all().item<bool>());
    }

    [Fact]
    public void Training_FlipsImageAndMaskTogether_AndSeedReplays()
    {
        var pf = new PennFudan(Fixtures.PennFudanFolder(1), download: false);
        var eval = new PFSegmentation(pf, imageSize: 16, device: Cpu)[0];
        var a = new PFSegmentation(pf, imageSize: 16, seed: 3, device: Cpu) { Training = true };
        var b = new PFSegmentation(pf, imageSize: 16, seed: 3, device: Cpu) { Training = true };
        int flipped = 0, changed = 0;
        for (int i = 0; i < 12; i++)
        {
            var x = a[0];
            var y = b[0];
            Assert.True(x[0].equal(y[0]).all().item<bool>() && x[1].equal(y[1]).all().item<bool>());
            bool same = x[1].equal(eval[1]).all().item<bool>();
            bool mirrored = x[1].equal(eval[1].flip(-1)).all().item<bool>();
            Assert.True(same || mirrored);
            if (mirrored && !same) flipped++;
            if (!x[0].allclose(same ? eval[0] : eval[0].flip(-1), atol: 1e-5)) changed++;
            // padding keeps -1 and grey under any augmentation
            Assert.True(x[1][0].eq(-1).all().item<bool>());
        }
        Assert.InRange(flipped, 1, 11);
        Assert.InRange(changed, 1, 12);
    }

    [Fact]
    public void Transforms_IdentityFactorsKeepTheImage_BlurKeepsConstants()
    {
        var img = rand(3, 8, 8, generator: new Generator(1, Cpu));
        Assert.True(TensorTransforms.AdjustBrightness(img, 1).allclose(img));
        Assert.True(TensorTransforms.AdjustContrast(img, 1).allclose(img));
        Assert.True(TensorTransforms.AdjustSaturation(img, 1).allclose(img));
        Assert.True(TensorTransforms.AdjustHue(img, 0).allclose(img, atol: 1e-5));
        Assert.True(TensorTransforms.AdjustSaturation(img, 0).select(0, 0).allclose(TensorTransforms.Grayscale(img)[0]));
        // A hue shift of a third of a turn turns pure red into pure green (HSV hand computation), for [C x H x W] and batches.
        var red = tensor(new float[] { 1, 0, 0 }).view(3, 1, 1);
        Assert.True(TensorTransforms.AdjustHue(red, 1.0 / 3).allclose(tensor(new float[] { 0, 1, 0 }).view(3, 1, 1), atol: 1e-5));
        Assert.True(TensorTransforms.AdjustHue(red.unsqueeze(0), -1.0 / 3).allclose(tensor(new float[] { 0, 0, 1 }).view(1, 3, 1, 1), atol: 1e-5));
        // agrees with TorchVision.NET's own (batched) adjust_hue, a port of torchvision's
        var reference = torchvision.transforms.functional.adjust_hue(img.unsqueeze(0), 0.17)[0];
        Assert.True(TensorTransforms.AdjustHue(img, 0.17).allclose(reference, atol: 1e-5));
        Assert.Throws<ArgumentException>(() => TensorTransforms.AdjustHue(img, 0.7));
        var flat = full(new long[] { 3, 9, 9 }, 0.25f);
        Assert.True(TensorTransforms.GaussianBlur(flat, 5, 1.3).allclose(flat, atol: 1e-6));
        // blur moves an impulse into a symmetric bump that keeps its mass
        var impulse = zeros(1, 9, 9); impulse[0, 4, 4] = tensor(1f);
        var blurred = TensorTransforms.GaussianBlur(impulse, 5, 1.0);
        Assert.Equal(1.0, blurred.sum().item<float>(), 5);
        Assert.Equal(blurred[0, 4, 2].item<float>(), blurred[0, 2, 4].item<float>(), 6);
    }

    /// <summary>Penn-Fudan items through a plain wrapper: PFSegmentation cannot see the source under it and reads
    /// whole items, then resizes them.</summary>
    sealed class Opaque(IDataset<PennFudanItem> inner) : IDataset<PennFudanItem>
    {
        public int Count => inner.Count;
        public PennFudanItem this[int index] => inner[index];
    }

    [Theory]
    [InlineData(4)]
    [InlineData(7)]
    [InlineData(16)]
    [InlineData(31)]
    public void ResizedReads_EqualResizingTheWholeItem(int size)
    {
        // fixture images 8..11 x 6, gray and palette masks: downscaled, upscaled (rows and columns repeat), as is
        var pf = new PennFudan(Fixtures.PennFudanFolder(4), download: false);
        for (int i = 0; i < pf.Count; i++)
        {
            using var item = pf[i];
            using var resized = pf.ReadResized(i, size, out int width);
            Assert.Equal(item.Image.shape[^1], width);
            Assert.True(PFSegmentation.ResizeLonger(item.Image, size).equal(resized.Image).all().item<bool>(), $"image {i} at {size}");
            Assert.True(PFSegmentation.ResizeLonger(item.Mask, size).equal(resized.Mask).all().item<bool>(), $"mask {i} at {size}");
            Assert.Equal(item.Name, resized.Name);
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => pf.ReadResized(4, size, out _));
    }

    [Fact]
    public void ItemsThroughSubsets_EqualItemsReadWhole_EvalAndTraining()
    {
        var pf = new PennFudan(Fixtures.PennFudanFolder(4), download: false);
        var inner = new Subset<PennFudanItem>(pf, [3, 1, 2, 0]);
        var subset = new Subset<PennFudanItem>(inner, [2, 0, 1]);                                 // pf items 2, 3, 1
        var opaque = new Opaque(subset);
        foreach (bool training in new[] { false, true })
        {
            var fast = new PFSegmentation(subset, imageSize: 12, seed: 5, device: Cpu) { Training = training };
            var whole = new PFSegmentation(opaque, imageSize: 12, seed: 5, device: Cpu) { Training = training };
            for (int round = 0; round < 3; round++)
                for (int i = 0; i < subset.Count; i++)
                {
                    var a = fast[i];
                    var b = whole[i];
                    Assert.True(a[0].equal(b[0]).all().item<bool>() && a[1].equal(b[1]).all().item<bool>(), $"item {i}, training {training}");
                }
            Assert.Equal(pf.FileNames[3], fast.Name(1));
            Assert.Equal(pf.FileNames[3], whole.Name(1));
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => new PFSegmentation(subset, device: Cpu)[3]);
    }

    [SkippableFact]
    public void RealData_EveryResizedRead_EqualsResizingTheWholeItem()
    {
        Skip.If(TestPaths.SharedData is null, "../shared/data is not present");
        var pf = new PennFudan(Path.Combine(TestPaths.SharedData!, "PennFudanPed"), download: false);
        for (int i = 0; i < pf.Count; i++)
        {
            using var scope = NewDisposeScope();
            using var item = pf[i];
            using var resized = pf.ReadResized(i, 256, out _);
            Assert.True(PFSegmentation.ResizeLonger(item.Image, 256).equal(resized.Image).all().item<bool>(), item.Name);
            Assert.True(PFSegmentation.ResizeLonger(item.Mask, 256).equal(resized.Mask).all().item<bool>(), item.Name);
        }
    }

    [SkippableFact]
    public void RealItem0_Eval256_MatchesTheReference()
    {
        Skip.If(TestPaths.SharedData is null, "../shared/data is not present");
        var ds = new PFSegmentation(new PennFudan(Path.Combine(TestPaths.SharedData!, "PennFudanPed"), download: false), device: Cpu);
        var item = ds[0];
        // Golden: baseline.json facts.pf_item0_eval_256 (seed_ref.py PFSegmentation, eval mode).
        Assert.Equal("FudanPed00001", ds.Name(0));
        Assert.Equal(0.348698, item[0].mean().item<float>(), 4);
        var (u, _, c) = item[1].unique(return_counts: true);
        Assert.Equal(new long[] { -1, 0, 1 }, u.data<long>().ToArray());
        Assert.Equal(new long[] { 2816, 56669, 6051 }, c!.data<long>().ToArray());
    }
}

using DetSeg.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Data;

public class MNISTClutterTests
{
    static readonly torch.Device Cpu = new(DeviceType.CPU);

    static MNIST RealMnist()
    {
        Skip.If(TestPaths.SharedData is null, "../shared/data is not present");
        return new MNIST(Path.Combine(TestPaths.SharedData!, "MNIST"), download: false);
    }

    static Dictionary<long, long> PixelsPerId(Tensor mask)
    {
        var (u, _, c) = mask.unique(return_counts: true);
        return u.data<long>().ToArray().Zip(c!.data<long>().ToArray()).ToDictionary(p => p.First, p => p.Second);
    }

    [SkippableFact]
    public void Item0_MatchesThePyTorchReferenceIdsAndPixelCounts()
    {
        using var mnist = RealMnist();
        var ds = new MNISTClutter(instance: true, mnist: mnist, device: Cpu);
        var item = ds[0];
        Assert.Equal(new long[] { 3, 128, 128 }, item[0].shape);
        Assert.Equal(new long[] { 128, 128 }, item[1].shape);
        // Golden: baseline.json facts.mc_0_instance_ids and mc_0_pixels_per_id (seed_ref.py, torch 1.13 + torchvision 0.14).
        var counts = PixelsPerId(item[1]);
        Assert.Equal(new long[] { -1, 10, 50, 60, 61, 90 }, counts.Keys.Order());
        Assert.Equal(15932, counts[-1]);
        Assert.Equal(79, counts[10]);
        Assert.Equal(65, counts[50]);
        Assert.Equal(146, counts[60]);
        Assert.Equal(62, counts[61]);
        Assert.Equal(100, counts[90]);
    }

    [SkippableFact]
    public void Item9595_HasTheSeedsDigits()
    {
        using var mnist = RealMnist();
        // Golden: the seed notebook's printed title "9595: has these digits [2, 4, 7, 9]" (baseline.json mc_9595_digits).
        Assert.Equal(new[] { 2, 4, 7, 9 }, new MNISTClutter(mnist: mnist, device: Cpu).Digits(9595));
        Assert.Equal(new[] { 2, 4, 7, 9 }, new MNISTClutter(instance: false, mnist: mnist, device: Cpu).Digits(9595));
    }

    [Fact]
    public void SameIndex_SameImage_AndBatchEqualsItems()
    {
        using var mnist = new MNIST(Fixtures.MnistFolder(20), download: false);
        var ds = new MNISTClutter(imageSize: 64, mnist: mnist, device: Cpu);
        var a = ds[5];
        var b = ds[5];
        Assert.True(a[0].equal(b[0]).all().item<bool>() && a[1].equal(b[1]).all().item<bool>());
        var batch = ds.GetBatch([7, 5, 11]);
        Assert.Equal(new long[] { 3, 3, 64, 64 }, batch[0].shape);
        Assert.True(batch[0][1].equal(a[0]).all().item<bool>());
        Assert.True(batch[1][1].equal(a[1]).all().item<bool>());
        var c = ds[11];
        Assert.True(batch[1][2].equal(c[1]).all().item<bool>());
        // more images than one CPU render chunk: still the same images, in order
        var big = ds.GetBatch(Enumerable.Range(0, 9).ToArray());
        Assert.Equal(9, big[1].shape[0]);
        Assert.True(big[1][5].equal(a[1]).all().item<bool>() && big[0][5].equal(a[0]).all().item<bool>());
    }

    [Fact]
    public void Masks_InstanceIdsAndSemanticLabels_AgreeWithTheLayout()
    {
        using var mnist = new MNIST(Fixtures.MnistFolder(20), download: false);
        var inst = new MNISTClutter(instance: true, imageSize: 64, maxNumDigits: 4, mnist: mnist, device: Cpu);
        var sem = new MNISTClutter(instance: false, imageSize: 64, maxNumDigits: 4, mnist: mnist, device: Cpu);
        for (int index = 0; index < 6; index++)
        {
            var layout = inst.Layout(index);
            Assert.InRange(layout.Length, 1, 4);
            var im = inst[index][1];
            var se = sem[index][1];
            // semantic = instance // maxNumDigits on digit pixels, -1 elsewhere (the seed's discarded line, fixed)
            var expected = where(im.ge(0), im.div(4, RoundingMode.floor), im);
            Assert.True(se.equal(expected).all().item<bool>());
            var presentIds = PixelsPerId(im).Keys.Where(k => k >= 0).ToHashSet();
            Assert.Subset(layout.Select(d => d.Id).ToHashSet(), presentIds);
            // the last digit is painted last: it is always visible
            Assert.Contains(layout[^1].Id, presentIds);
            // digit pixels carry exactly their digit's colour; the background is black
            var image = inst[index][0];
            var last = layout[^1];
            var lastPixels = im.eq(last.Id);
            for (int ch = 0; ch < 3; ch++)
                Assert.True(image[ch].masked_select(lastPixels).eq(last.Color[ch]).all().item<bool>());
            Assert.Equal(0f, image.masked_select(im.lt(0).unsqueeze(0).expand(3, -1, -1)).abs().sum().item<float>());
        }
    }

    [Fact]
    public void InverseAffineMatrix_FollowsTorchvisionConvention()
    {
        // Hand computation of torchvision's _get_inverse_affine_matrix: a pure 90° rotation maps output (x, y) to input (y, -x)
        // scaled by 1/scale; the translation enters as -R^-1 t.
        var m = MNISTClutter.InverseAffineMatrix(90, 3, 0, 2, 0);
        double[] expected = [0, 0.5, 0, -0.5, 0, 1.5];
        for (int i = 0; i < 6; i++) Assert.Equal(expected[i], m[i], 12);
        var sheared = MNISTClutter.InverseAffineMatrix(0, 0, 0, 1, 45);
        Assert.Equal(new double[] { 1, 1, 0, 0, 1, 0 }, sheared.Select(v => Math.Round(v, 12)));
    }

    [Fact]
    public void RejectsBadSizes()
    {
        using var mnist = new MNIST(Fixtures.MnistFolder(2), download: false);
        Assert.Throws<ArgumentException>(() => new MNISTClutter(imageSize: 20, mnist: mnist));
        Assert.Throws<ArgumentException>(() => new MNISTClutter(maxNumDigits: 0, mnist: mnist));
        Assert.Throws<ArgumentOutOfRangeException>(() => new MNISTClutter(mnist: mnist, device: Cpu)[2]);
    }
}

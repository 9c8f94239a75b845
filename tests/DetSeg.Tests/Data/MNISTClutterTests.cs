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

    /// <summary>Per image, "id:pixels" for every id in the instance mask of images 0, 5, ..., 145, produced by
    /// ../shared/reference/seed_ref.py (torch 1.13 + torchvision 0.14, Debian python3-torch) on the same MNIST files.
    /// All 152 images checked that way (0..149, 9595, 9999) matched pixel for pixel; these 30 are kept as goldens.</summary>
    static readonly string[] ReferenceIdPixels =
    [
        "-1:15932 10:79 50:65 60:146 61:62 90:100",
        "-1:16227 0:96 60:61",
        "-1:15512 0:114 1:135 10:60 30:122 50:145 51:39 70:163 80:94",
        "-1:16073 20:158 40:87 90:66",
        "-1:16027 20:147 60:210",
        "-1:15998 0:132 60:182 80:72",
        "-1:15519 30:190 31:54 32:80 50:117 60:143 70:143 71:84 72:54",
        "-1:15451 10:35 20:53 30:206 40:160 41:62 50:166 51:120 90:131",
        "-1:15524 0:73 10:64 20:137 60:91 80:83 81:102 90:117 91:107 92:86",
        "-1:15742 10:49 11:96 40:120 50:74 70:58 71:40 80:128 90:77",
        "-1:16051 0:68 40:64 41:96 70:56 80:49",
        "-1:15547 0:90 20:95 30:99 40:77 50:118 80:129 90:90 91:139",
        "-1:16174 10:72 80:138",
        "-1:15819 10:90 11:34 30:96 70:61 71:80 80:136 81:68",
        "-1:15872 40:85 60:52 70:120 80:87 90:168",
        "-1:16285 20:99",
        "-1:15720 10:42 30:76 31:48 32:58 40:157 50:60 90:93 91:130",
        "-1:15637 0:133 1:77 30:104 40:108 80:134 81:81 90:110",
        "-1:15453 0:93 1:179 20:66 21:67 22:115 60:81 70:58 71:60 80:82 90:130",
        "-1:16276 40:108",
        "-1:16254 90:130",
        "-1:15897 30:127 70:77 80:102 81:80 90:101",
        "-1:16093 0:71 60:150 80:70",
        "-1:15640 0:178 20:117 21:72 30:90 60:82 61:86 90:119",
        "-1:15923 30:143 31:78 80:100 90:140",
        "-1:15803 10:64 20:129 50:70 51:84 70:64 90:170",
        "-1:15371 0:91 1:88 20:64 21:146 40:129 60:75 70:97 80:138 81:87 90:98",
        "-1:15547 10:32 11:73 12:57 20:123 30:164 50:73 51:101 60:214",
        "-1:15766 10:58 11:66 50:97 90:76 91:90 92:119 93:112",
        "-1:15705 10:64 20:144 30:138 60:97 80:114 90:122",
    ];

    [SkippableFact]
    public void ThirtyImages_MatchThePyTorchReferencePixelForPixel()
    {
        using var mnist = RealMnist();
        var ds = new MNISTClutter(mnist: mnist, device: Cpu);
        var masks = ds.GetBatch(Enumerable.Range(0, 30).Select(i => 5 * i).ToArray())[1];
        for (int n = 0; n < 30; n++)
        {
            var counts = PixelsPerId(masks[n]);
            Assert.Equal(ReferenceIdPixels[n], string.Join(" ", counts.OrderBy(p => p.Key).Select(p => $"{p.Key}:{p.Value}")));
        }
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
        // more images than one chunk of the tensor renderer: still the same images, in order
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

    /// <summary>The seed's way, written out independently of the renderer: per digit, pad it to the whole canvas, warp
    /// the whole canvas (torchvision's pixel-centred affine grid, nearest sampling), then paint its pixels above 0.5 in
    /// its colour and id over what is there, digit after digit.</summary>
    static (Tensor Image, Tensor Mask) PaintLikeTheSeed(MNISTClutter ds, int index)
    {
        int S = ds.ImageSize, pad = ds.Pad, far = S - 28 - pad;
        var image = zeros(3, S, S);
        var mask = full(new long[] { S, S }, -1L, ScalarType.Int64);
        var line = linspace(-S * 0.5 + 0.5, S * 0.5 + 0.5 - 1, S, ScalarType.Float32);
        foreach (var d in ds.Layout(index))
        {
            var digit = ds.Mnist.Images[d.MnistIndex].to(ScalarType.Float32).div(255.0).view(1, 1, 28, 28);
            digit = nn.functional.pad(digit, [pad, far, pad, far]);
            var m = MNISTClutter.InverseAffineMatrix(d.Angle, d.TranslateX, d.TranslateY, d.Scale, d.Shear).Select(v => (float)v).ToArray();
            float half = 0.5f * S;
            var gx = line.view(1, S).mul(m[0] / half).add(line.view(S, 1).mul(m[1] / half)).add(m[2] / half);
            var gy = line.view(1, S).mul(m[3] / half).add(line.view(S, 1).mul(m[4] / half)).add(m[5] / half);
            var grid = stack([gx, gy], -1).unsqueeze(0);                                   // [1 x S x S x 2]
            var warped = nn.functional.grid_sample(digit, grid, GridSampleMode.Nearest, GridSamplePaddingMode.Zeros, align_corners: false)[0, 0];
            var on = warped.gt(0.5);
            for (int c = 0; c < 3; c++) image[c].masked_fill_(on, d.Color[c]);
            mask.masked_fill_(on, d.Id);
        }
        return (image, mask);
    }

    [Theory]
    [InlineData(128, 10, 0, true)]
    [InlineData(128, 6, 5000, true)]
    [InlineData(61, 4, 0, true)]
    [InlineData(31, 3, 0, true)]
    [InlineData(100, 10, 300, true)]
    [InlineData(128, 10, 0, false)]
    [InlineData(61, 4, 0, false)]
    [InlineData(100, 10, 300, false)]
    public void Render_EqualsWarpingTheWholeCanvasPerDigit(int size, int maxDigits, int first, bool host)
    {
        // digits inked up to their borders (real ones have blank margins that would hide a window one pixel short)
        using var mnist = new MNIST(Fixtures.MnistFolder(20, edgeToEdge: true), download: false);
        var ds = new MNISTClutter(imageSize: size, maxNumDigits: maxDigits, mnist: mnist, device: Cpu, numImages: first + 64);
        var indices = Enumerable.Range(first, 64).ToArray();
        // the CPU renderer (GetBatch on a CPU dataset) and the tensor one (GPUs; run here on the CPU)
        var (images, masks, _) = host ? ds.RenderOnHost(indices) : ds.RenderWithTensors(indices);
        if (host)
        {
            var batch = ds.GetBatch(indices);
            Assert.True(batch[1].equal(masks).all().item<bool>() && batch[0].equal(images).all().item<bool>());
        }
        for (int n = 0; n < indices.Length; n++)
        {
            var (image, mask) = PaintLikeTheSeed(ds, indices[n]);
            Assert.True(mask.equal(masks[n]).all().item<bool>(), $"mask of image {indices[n]} differs in {mask.ne(masks[n]).sum().item<long>()} pixels");
            Assert.True(image.equal(images[n]).all().item<bool>(), $"image {indices[n]} differs");
        }
    }

    [Fact]
    public void SemanticMasks_FromBothRenderers_AreTheLabels()
    {
        using var mnist = new MNIST(Fixtures.MnistFolder(20, edgeToEdge: true), download: false);
        var ds = new MNISTClutter(instance: false, imageSize: 64, maxNumDigits: 5, mnist: mnist, device: Cpu);
        var indices = Enumerable.Range(0, 20).ToArray();
        var host = ds.RenderOnHost(indices);
        var tensors = ds.RenderWithTensors(indices);
        Assert.True(host.Mask.equal(tensors.Mask).all().item<bool>() && host.Image.equal(tensors.Image).all().item<bool>());
        Assert.True(host.Mask.max().item<long>() <= 9);
    }

    [Fact]
    public void DigitWindow_CoversTheWarpedDigitAndNoMore()
    {
        // Identity at S = 128: the digit sits on pixels 50..77 (pad 50); the window adds the half pixel of nearest
        // sampling and two pixels of margin on each side: 47..80.
        float[] identity = [1, 0, 0, 0, 1, 0];
        Assert.Equal((47, 47, 80, 80), MNISTClutter.DigitWindow(identity, 128, 50));
        // Moved right 10 and down 3 (torchvision's inverse matrix holds -t): the window moves with it.
        var moved = MNISTClutter.InverseAffineMatrix(0, 10, 3, 1, 0).Select(v => (float)v).ToArray();
        Assert.Equal((57, 50, 90, 83), MNISTClutter.DigitWindow(moved, 128, 50));
        // Scaled x1.25 about the centre: 28 px become 35, 46..81 plus margins; and clamped at the canvas edge.
        var big = MNISTClutter.InverseAffineMatrix(0, 0, 0, 1.25, 0).Select(v => (float)v).ToArray();
        Assert.Equal((44, 44, 83, 83), MNISTClutter.DigitWindow(big, 128, 50));
        var edge = MNISTClutter.InverseAffineMatrix(0, -50, 49, 1, 0).Select(v => (float)v).ToArray();
        Assert.Equal((0, 96, 30, 127), MNISTClutter.DigitWindow(edge, 128, 50));
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
        // 28 and 29 leave no room to move a digit: the seed's randint(-pad, pad) fails there with pad 0
        var tight = Assert.Throws<ArgumentException>(() => new MNISTClutter(imageSize: 29, mnist: mnist));
        Assert.Contains("imageSize", tight.Message);
        Assert.Throws<ArgumentException>(() => new MNISTClutter(maxNumDigits: 0, mnist: mnist));
        Assert.Throws<ArgumentOutOfRangeException>(() => new MNISTClutter(mnist: mnist, device: Cpu)[2]);
        Assert.Throws<ArgumentException>(() => new MNISTClutter(mnist: mnist, numImages: 0));
    }

    [Fact]
    public void NumImages_ExtendsBeyondTheDigitCount_KeepingTheFirstImages()
    {
        using var mnist = new MNIST(Fixtures.MnistFolder(20), download: false);
        var seed = new MNISTClutter(imageSize: 64, mnist: mnist, device: Cpu);
        var more = new MNISTClutter(imageSize: 64, mnist: mnist, device: Cpu, numImages: 500);
        Assert.Equal(20, seed.Count);
        Assert.Equal(500, more.Count);
        // image i is seeded with i: the first 20 are the seed's images
        Assert.True(more[3][1].equal(seed[3][1]).all().item<bool>());
        // images past the digit count exist, differ from each other, and still draw only the 20 digits
        var a = more[20]; var b = more[499];
        Assert.False(a[1].equal(b[1]).all().item<bool>());
        Assert.All(more.Layout(499), d => Assert.InRange(d.MnistIndex, 0, 19));
        Assert.Throws<ArgumentOutOfRangeException>(() => more[500]);
    }
}

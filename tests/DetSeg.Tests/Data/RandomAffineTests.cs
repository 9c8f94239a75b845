using DetSeg.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Data;

public class RandomAffineTests
{
    static Generator Rng(ulong seed) => new(seed, new Device(DeviceType.CPU));

    [Fact]
    public void NoRotationShiftOrZoom_IsTheIdentity()
    {
        // align_corners=false samples an identity grid at the pixel centres: bilinear weights 1 and 0, up to float32 rounding.
        var images = rand(3, 1, 28, 28, generator: Rng(1));
        var output = new RandomAffine(0, 0, 0, Rng(2)).Apply(images);
        Assert.Equal(0.0, (output - images).abs().max().item<float>(), 5); // grid coordinates are float32: ~1e-6 off
    }

    [Fact]
    public void Shift_MovesEachImageByItsOwnDraw_InPixels()
    {
        // One bright pixel per image at the centre; a pure shift of t (normalized) moves content by -t/2 of the side.
        // Hand rule: the centre of mass lands at 13.5 - tx * 28 / 2 (x) and 13.5 - ty * 28 / 2 (y), ± bilinear rounding.
        const int side = 28;
        var images = zeros(4, 1, side, side);
        images[TensorIndex.Colon, 0, TensorIndex.Slice(13, 15), TensorIndex.Slice(13, 15)] = ones(4, 2, 2);
        var augment = new RandomAffine(0, 0.1, 0, Rng(7));
        var theta = augment.Matrices(4, CPU);
        var output = new RandomAffine(0, 0.1, 0, Rng(7)).Apply(images);             // same seed: same matrices
        var grid = arange(side, dtype: float32);
        for (int i = 0; i < 4; i++)
        {
            var img = output[i, 0];
            double mass = img.sum().item<float>();
            Assert.Equal(4.0, mass, 2);                                              // the spot stays whole inside
            double cx = (img.sum(dim: 0) * grid).sum().item<float>() / mass;
            double cy = (img.sum(dim: 1) * grid).sum().item<float>() / mass;
            double tx = theta[i, 0, 2].item<float>(), ty = theta[i, 1, 2].item<float>();
            Assert.InRange(Math.Abs(tx), 0, 0.2);
            Assert.Equal(13.5 - tx * side / 2, cx, 1);
            Assert.Equal(13.5 - ty * side / 2, cy, 1);
            Assert.Equal(1.0, theta[i, 0, 0].item<float>(), 6);                      // no rotation, no zoom
            Assert.Equal(0.0, theta[i, 0, 1].item<float>(), 6);
        }
    }

    [Fact]
    public void RotationAndZoom_StayWithinTheirRanges()
    {
        // θ's 2x2 part is R(a)/s: its determinant is 1/s², its angle a.
        var theta = new RandomAffine(10, 0, 0.1, Rng(3)).Matrices(256, CPU);
        var a = theta[TensorIndex.Colon, 0, 0]; var b = theta[TensorIndex.Colon, 0, 1];
        var c = theta[TensorIndex.Colon, 1, 0]; var d = theta[TensorIndex.Colon, 1, 1];
        var zoom = (a * d - b * c).rsqrt();
        var angle = atan2(c, a) * (180 / Math.PI);
        Assert.InRange(zoom.min().item<float>(), 0.9f - 1e-5f, 1.0f);
        Assert.InRange(zoom.max().item<float>(), 1.0f, 1.1f + 1e-5f);
        Assert.InRange(angle.abs().max().item<float>(), 5f, 10f + 1e-4f);                // 256 draws reach past half the range
        Assert.True((a - d).abs().max().item<float>() < 1e-6 && (b + c).abs().max().item<float>() < 1e-6);
    }

    [Fact]
    public void SameSeed_SameDraws_OtherSeed_OtherDraws()
    {
        var first = new RandomAffine(10, 0.1, 0.1, Rng(5)).Matrices(8, CPU);
        var again = new RandomAffine(10, 0.1, 0.1, Rng(5)).Matrices(8, CPU);
        var other = new RandomAffine(10, 0.1, 0.1, Rng(6)).Matrices(8, CPU);
        Assert.True(first.eq(again).all().item<bool>());
        Assert.False(first.eq(other).all().item<bool>());
    }

    [Fact]
    public void BadArguments_AreNamed()
    {
        Assert.Equal("degrees", Assert.Throws<ArgumentOutOfRangeException>(() => new RandomAffine(-1, 0)).ParamName);
        Assert.Equal("translate", Assert.Throws<ArgumentOutOfRangeException>(() => new RandomAffine(0, 1)).ParamName);
        Assert.Equal("scale", Assert.Throws<ArgumentOutOfRangeException>(() => new RandomAffine(0, 0, double.NaN)).ParamName);
        var e = Assert.Throws<ArgumentException>(() => new RandomAffine(0, 0.1).Apply(zeros(28, 28)));
        Assert.Contains("[28 x 28]", e.Message);
        Assert.Throws<ArgumentException>(() => new RandomAffine(0, 0.1).Apply(zeros(new long[] { 1, 1, 28, 28 }, dtype: int64)));
    }
}

using DetSeg.Runtime;
using DetSeg.Segmentation;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Runtime;

public class MaxPoolTests
{
    [Fact]
    public void HandExample_EachTwoByTwoWindowsMaximum()
    {
        var x = arange(16, dtype: ScalarType.Float32).reshape(1, 1, 4, 4);   // rows 0..3, 4..7, 8..11, 12..15
        using (no_grad())
            Assert.Equal(new float[] { 5, 7, 13, 15 }, MaxPool.Forward(nn.MaxPool2d(2), x).data<float>().ToArray());
    }

    [Theory]
    [InlineData(ScalarType.Float32, 6, 8)]
    [InlineData(ScalarType.Float32, 5, 7)]      // odd: the last row and column are dropped, as max_pool2d does
    [InlineData(ScalarType.BFloat16, 10, 12)]
    [InlineData(ScalarType.Float64, 3, 2)]
    public void WithoutGradient_EqualsMaxPool2d_IncludingNaNAndTies(ScalarType dtype, long h, long w)
    {
        var g = new Generator(5);
        var x = randn(new long[] { 2, 3, h, w }, generator: g).mul(4).round().to(dtype);   // few distinct values: tied windows
        x[0, 0, 0, 0] = float.NaN; x[1, 2, h - 1, w - 1] = float.NaN;                       // NaN wins its window (the second may be dropped)
        var pool = nn.MaxPool2d(2);
        Assert.True(MaxPool.IsTwoByTwo(pool));
        var expected = nn.functional.max_pool2d(x, 2);
        using (no_grad())
        {
            var actual = MaxPool.Forward(pool, x);
            Assert.Equal(expected.shape, actual.shape);
            Assert.Equal(dtype, actual.dtype);
            Assert.True(actual.isnan().eq(expected.isnan()).all().item<bool>());
            Assert.True(actual.nan_to_num().eq(expected.nan_to_num()).all().item<bool>());
            Assert.True(float.IsNaN(actual[0, 0, 0, 0].to(ScalarType.Float32).item<float>()));
            // a non-contiguous input (a channels-last view) gives the same
            var strided = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
            Assert.True(MaxPool.Forward(pool, strided).nan_to_num().eq(expected.nan_to_num()).all().item<bool>());
        }
    }

    [Fact]
    public void WithGradient_UsesTheModule_TiedWindowsGradientGoesToItsFirstMaximum()
    {
        // maximum() would split a tie's gradient; max_pool2d gives it all to the window's first maximum
        var x = ones(1, 1, 2, 4).requires_grad_();
        var pool = nn.MaxPool2d(2);
        MaxPool.Forward(pool, x).sum().backward();
        Assert.Equal(new float[] { 1, 0, 1, 0, 0, 0, 0, 0 }, x.grad!.data<float>().ToArray());
    }

    [Fact]
    public void OtherPools_UseTheModulesOwnForward()
    {
        var x = randn(1, 2, 7, 7);
        using var _ = no_grad();
        foreach (var pool in new[] { nn.MaxPool2d(3), nn.MaxPool2d(2, stride: 1), nn.MaxPool2d(2, padding: 1), nn.MaxPool2d(2, ceil_mode: true) })
        {
            Assert.False(MaxPool.IsTwoByTwo(pool));
            Assert.True(MaxPool.Forward(pool, x).eq(pool.call(x)).all().item<bool>());
        }
    }

    [Fact]
    public void UNetInference_PairwisePools_EqualMaxPool2d()
    {
        // the encoder's pools pairwise (the default without gradients) or by max_pool2d: the same logits
        manual_seed(3);
        var unet = new SemanticSegmentor(3, 2, width: 16);
        unet.eval();
        var x = randn(2, 3, 64, 48);
        using var _ = no_grad();
        Tensor viaModule;
        MaxPool.UseModule = true;
        try { viaModule = unet.call(x); } finally { MaxPool.UseModule = false; }
        Assert.True(unet.call(x).eq(viaModule).all().item<bool>());
    }
}

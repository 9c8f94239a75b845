using DetSeg.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Runtime;

public class TransposedConvTests
{
    [Theory]
    [InlineData(ScalarType.Float64, 3, 5, 1e-12)]
    [InlineData(ScalarType.Float32, 32, 16, 1e-5)]   // multiples of 16: oneDNN's 1x1 kernel, float32 sums in another order
    [InlineData(ScalarType.Float32, 3, 5, 1e-5)]     // narrow: through ConvGuard's float64
    public void KernelTwoStrideTwo_EqualsConvTranspose2d_ValuesAndGradients(ScalarType dtype, long cin, long cout, double tol)
    {
        var g = new Generator(4);
        var conv = nn.ConvTranspose2d(cin, cout, 2, stride: 2, dtype: dtype);
        Assert.True(TransposedConv.IsKernelTwoStrideTwo(conv));
        var x = randn(new long[] { 2, cin, 5, 7 }, dtype: dtype, generator: g).requires_grad_();
        var x2 = x.detach().clone().requires_grad_();
        var upstream = randn(new long[] { 2, cout, 10, 14 }, dtype: dtype, generator: g);

        // The definition: libtorch's own transposed convolution, on the same parameters.
        var expected = nn.functional.conv_transpose2d(x, conv.weight!, conv.bias, strides: [2, 2]);
        (expected * upstream).sum().backward();
        var gw = conv.weight!.grad!.clone(); var gb = conv.bias!.grad!.clone();
        conv.zero_grad();

        var actual = TransposedConv.Forward(conv, x2);
        (actual * upstream).sum().backward();
        Assert.Equal(new long[] { 2, cout, 10, 14 }, actual.shape);
        Assert.Equal(dtype, actual.dtype);
        Assert.True(allclose(actual, expected, rtol: tol, atol: tol), $"max error {(actual - expected).abs().max().to(ScalarType.Float64).item<double>()}");
        Assert.True(allclose(x2.grad!, x.grad!, rtol: tol, atol: tol), "input gradient");
        Assert.True(allclose(conv.weight!.grad!, gw, rtol: tol, atol: tol), "weight gradient");
        Assert.True(allclose(conv.bias!.grad!, gb, rtol: tol, atol: tol), "bias gradient");
    }

    [Fact]
    public void OtherTransposedConvs_UseTheModulesOwnForward()
    {
        // Overlapping windows (kernel 3) are not a pixel shuffle: the module computes them, and the result is its own.
        var conv = nn.ConvTranspose2d(4, 2, 3, stride: 2, dtype: ScalarType.Float64);
        Assert.False(TransposedConv.IsKernelTwoStrideTwo(conv));
        var x = randn(1, 4, 3, 3, dtype: ScalarType.Float64);
        Assert.True(TransposedConv.Forward(conv, x).eq(conv.call(x)).all().item<bool>());
        Assert.False(TransposedConv.IsKernelTwoStrideTwo(nn.ConvTranspose2d(4, 2, 2, stride: 2, padding: 1)));
    }
}

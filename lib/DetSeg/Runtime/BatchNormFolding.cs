using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Runtime;

/// <summary>
/// BatchNorm folded into the convolution before it, for inference (ultralytics' <c>fuse_conv_and_bn</c>): in eval
/// mode BN is the per-channel affine map y = (x − μ)·γ/√(σ² + ε) + β, so conv-then-BN is one conv with weight
/// W·γ/√(σ² + ε) and bias (b − μ)·γ/√(σ² + ε) + β, and the BN pass over the activations disappears.
/// </summary>
/// <remarks>The BN module is read by name (buffers <c>running_mean</c>/<c>running_var</c>, parameters
/// <c>weight</c>/<c>bias</c>, property <c>eps</c>), so TorchSharp's BatchNorm2d and DetSeg's own both work.</remarks>
public static class BatchNormFolding
{
    /// <summary>The folded (weight, bias) of <paramref name="conv"/> followed by <paramref name="bn"/>, computed in
    /// float64 and returned in the conv weight's dtype; new tensors without gradient, the modules are not changed.</summary>
    /// <exception cref="ArgumentException">A transposed conv, or <paramref name="bn"/> without running statistics or
    /// with another channel count, naming the module.</exception>
    public static (Tensor Weight, Tensor Bias) Fold(Convolution conv, nn.Module bn)
    {
        ArgumentNullException.ThrowIfNull(conv);
        ArgumentNullException.ThrowIfNull(bn);
        if (conv.transposed) throw new ArgumentException("BatchNormFolding: a transposed convolution's output channels sit on weight dim 1; not supported.", nameof(conv));
        var buffers = bn.named_buffers().ToDictionary(p => p.name, p => p.buffer);
        var parameters = bn.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        if (!buffers.TryGetValue("running_mean", out var mean) || !buffers.TryGetValue("running_var", out var variance))
            throw new ArgumentException($"BatchNormFolding: {bn.GetType().Name} has no running_mean/running_var buffers (track_running_stats off?).", nameof(bn));
        long c = conv.out_channels;
        if (mean.shape[0] != c) throw new ArgumentException($"BatchNormFolding: {bn.GetType().Name} has {mean.shape[0]} channels, the conv {c} outputs.", nameof(bn));
        double eps = bn.GetType().GetProperty("eps")?.GetValue(bn) is double e ? e : 1e-5;

        using var _ = no_grad();
        using var scope = NewDisposeScope();
        using var epsS = eps.ToScalar();
        var w = conv.weight!.detach().to(float64);
        var dev = w.device;
        var gamma = parameters.TryGetValue("weight", out var g) ? g.detach().to(float64) : ones(c, float64, dev);
        var beta = parameters.TryGetValue("bias", out var b) ? b.detach().to(float64) : zeros(c, float64, dev);
        var bias = conv.bias is null ? zeros(c, float64, dev) : conv.bias.detach().to(float64);
        var scale = gamma.div(variance.to(float64).add(epsS, Scalars.One).sqrt());                     // [Cout]
        var weight = w.mul(scale.view(-1, 1, 1, 1));                                       // [Cout x Cin/g x K x K]
        var foldedBias = bias.sub(mean.to(float64)).mul(scale).add(beta, Scalars.One);      // [Cout] (explicit alpha: no temporary Scalar)
        var dtype = conv.weight!.dtype;
        return (weight.to(dtype).MoveToOuterDisposeScope(), foldedBias.to(dtype).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// <paramref name="conv"/>'s convolution of <paramref name="x"/> with the given (folded) weight and bias: oneDNN
    /// unless the pass is one ConvGuard routes through float64 (<see cref="ConvGuard.OutputAtRisk"/> on the CPU; an
    /// inference pass has no input gradient, so the output is the only pass at risk).
    /// </summary>
    public static Tensor Conv2d(Convolution conv, Tensor x, Tensor weight, Tensor bias)
    {
        bool atRisk = x.device_type == DeviceType.CPU && ConvGuard.OutputAtRisk(conv, x.dtype);
        return atRisk
            ? ConvGuard.Conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)
            : nn.functional.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups);
    }
}

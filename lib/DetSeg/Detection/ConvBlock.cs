using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Detection;

/// <summary>Darknet-53's basic unit: Conv2d (no bias, BatchNorm has one) → BatchNorm2d → LeakyReLU(0.1).</summary>
/// <remarks>The course's <c>conv_block</c>. Darknet's weight files store, per block, the BN bias, weight,
/// running mean and running variance, then the conv weight (see <see cref="DarknetWeights"/>).</remarks>
public sealed class ConvBlock : nn.Module<Tensor, Tensor>
{
    /// <summary>The bias-free convolution.</summary>
    public readonly Conv2d conv;
    /// <summary>The batch normalization after <see cref="conv"/>.</summary>
    public readonly Runtime.BatchNorm2d bn;
    private readonly Runtime.LeakyReLU act;

    /// <summary>Creates a block; defaults are the course's 3x3, stride 1, padding 1.</summary>
    public ConvBlock(long inChannels, long outChannels, long kernelSize = 3, long stride = 1, long padding = 1)
        : base(nameof(ConvBlock))
    {
        conv = nn.Conv2d(inChannels, outChannels, kernelSize, stride: stride, padding: padding, bias: false);
        bn = new Runtime.BatchNorm2d(outChannels); // no temporary Scalar per call: see Runtime.BatchNorm2d
        act = new Runtime.LeakyReLU(0.1, inplace: true); // slope held: see Runtime.LeakyReLU
        RegisterComponents();
        DetSeg.Runtime.ConvGuard.Protect(this); // narrow convs: oneDNN computes them wrong on some CPUs
    }

    // conv and bn folded into one (Fuse): plain tensors, so they are neither trained nor saved
    private Tensor? fusedWeight, fusedBias;

    /// <summary>True while an eval-mode forward uses the folded conv (see <see cref="Fuse"/>).</summary>
    public bool IsFused => fusedWeight is not null;

    /// <summary>The folded copy (tests).</summary>
    internal (Tensor? Weight, Tensor? Bias) Folded => (fusedWeight, fusedBias);

    /// <summary>
    /// Folds <see cref="bn"/> into a copy of <see cref="conv"/>'s weights (<see cref="Runtime.BatchNormFolding"/>) for
    /// eval-mode forwards, which then skip the BN pass. Parameters, buffers and the state_dict are unchanged; a
    /// training-mode forward drops the folded copy (the weights are about to change), and after loading or converting
    /// weights call <c>Fuse</c> again.
    /// </summary>
    /// <param name="dtype">The folded copy's element type (default: the conv weight's). <see cref="YOLOv3.WithPrecision"/>
    /// folds the float32 weights and statistics and rounds the result to bfloat16 once; folding after the conversion
    /// would fold statistics already rounded (on the trained ×0.25 detector both give the same mAP, 0.919).</param>
    public void Fuse(ScalarType? dtype = null)
    {
        Unfuse();
        var (w, b) = Runtime.BatchNormFolding.Fold(conv, bn);
        if (dtype is ScalarType t && t != w.dtype)
        {
            var (wt, bt) = (w.to(t), b.to(t));
            w.Dispose();
            b.Dispose();
            (w, b) = (wt, bt);
        }
        (fusedWeight, fusedBias) = (w, b);
        fusedWeight.DetachFromDisposeScope();
        fusedBias.DetachFromDisposeScope();
    }

    /// <summary>Drops the folded copy: eval-mode forwards run conv and BN again.</summary>
    public void Unfuse()
    {
        fusedWeight?.Dispose();
        fusedBias?.Dispose();
        fusedWeight = fusedBias = null;
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        if (training && fusedWeight is not null) Unfuse();
        if (fusedWeight is not null && fusedWeight.dtype == x.dtype && fusedWeight.device_type == x.device_type && fusedWeight.device_index == x.device_index)
            return act.call(Runtime.BatchNormFolding.Conv2d(conv, x, fusedWeight, fusedBias!));
        return act.call(bn.call(conv.call(x)));
    }
}

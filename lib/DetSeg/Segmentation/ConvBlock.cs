using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Segmentation;

/// <summary>The U-Net's unit: two times [3x3 conv (padding 1), BatchNorm, LeakyReLU(0.01)]; keeps H and W.</summary>
public sealed class ConvBlock : nn.Module<Tensor, Tensor>
{
    private readonly Sequential conv_block;

    /// <summary>Maps <paramref name="numInput"/> channels to <paramref name="numOutput"/>.</summary>
    public ConvBlock(long numInput, long numOutput) : base(nameof(ConvBlock))
    {
        conv_block = nn.Sequential(
            nn.Conv2d(numInput, numOutput, 3, padding: 1),
            new Runtime.BatchNorm2d(numOutput),
            new Runtime.LeakyReLU(0.01, inplace: true),
            nn.Conv2d(numOutput, numOutput, 3, padding: 1),
            new Runtime.BatchNorm2d(numOutput),
            new Runtime.LeakyReLU(0.01, inplace: true));
        RegisterComponents();
        DetSeg.Runtime.ConvGuard.Protect(this); // narrow convs: oneDNN computes them wrong on some CPUs
    }

    // Each conv with its BatchNorm folded in (Fuse): plain tensors, so they are neither trained nor saved.
    private (Tensor Weight, Tensor Bias)[]? folded;

    /// <summary>True while eval-mode forwards use the folded convs (see <see cref="Fuse"/>).</summary>
    public bool IsFused => folded is not null;

    /// <summary>
    /// Folds each BatchNorm into a copy of the conv before it (<see cref="Runtime.BatchNormFolding"/>) for eval-mode
    /// forwards, which then skip the BN passes over the activations. Parameters, buffers and the state_dict are
    /// unchanged; a training-mode forward drops the folded copies; after loading weights call <c>Fuse</c> again.
    /// </summary>
    /// <param name="dtype">The folded copies' element type (default: the conv weights'); folded from the float32
    /// weights and statistics and rounded once (see <see cref="SemanticSegmentor.WithPrecision"/>).</param>
    public void Fuse(ScalarType? dtype = null)
    {
        Unfuse();
        folded = [Fold(0, 1, dtype), Fold(3, 4, dtype)];
    }

    (Tensor, Tensor) Fold(int conv, int bn, ScalarType? dtype)
    {
        var (w, b) = Runtime.BatchNormFolding.Fold((Conv2d)conv_block[conv], (nn.Module)conv_block[bn]);
        if (dtype is ScalarType t && t != w.dtype)
        {
            var (wt, bt) = (w.to(t), b.to(t));
            w.Dispose();
            b.Dispose();
            (w, b) = (wt, bt);
        }
        return (w.DetachFromDisposeScope(), b.DetachFromDisposeScope());
    }

    /// <summary>Drops the folded copies: eval-mode forwards run conv and BN again.</summary>
    public void Unfuse()
    {
        if (folded is null) return;
        foreach (var (w, b) in folded) { w.Dispose(); b.Dispose(); }
        folded = null;
    }

    /// <summary>[B x numInput x H x W] to [B x numOutput x H x W].</summary>
    public override Tensor forward(Tensor x)
    {
        if (training && folded is not null) Unfuse();
        if (folded is not [var (w1, b1), var (w2, b2)] || w1.dtype != x.dtype || w1.device_type != x.device_type || w1.device_index != x.device_index)
            return conv_block.call(x);
        var act1 = (nn.Module<Tensor, Tensor>)conv_block[2];
        var act2 = (nn.Module<Tensor, Tensor>)conv_block[5];
        var y = act1.call(Runtime.BatchNormFolding.Conv2d((Conv2d)conv_block[0], x, w1, b1));
        return act2.call(Runtime.BatchNormFolding.Conv2d((Conv2d)conv_block[3], y, w2, b2));
    }
}

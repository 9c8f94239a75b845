using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Segmentation;

/// <summary>
/// A U-Net decoder step: 2x2 transposed conv with stride 2 (doubles H and W, <c>numInput → numOutput</c>
/// channels), concatenation with the encoder's skip, then a <see cref="ConvBlock"/> (<c>2·numOutput → numOutput</c>).
/// </summary>
/// <remarks>
/// When a side was odd at the matching encoder step, max-pooling floored it and the upsampled map is one pixel
/// short; it is zero-padded to the skip's size (the course's model assumed sides divisible by 16).
/// </remarks>
public sealed class DecoderBlock : nn.Module<Tensor, Tensor, Tensor>
{
    // Named as in the course (typo included) so that state_dict keys match the PyTorch reference.
    private readonly ConvTranspose2d conv_trasp_2d;
    private readonly ConvBlock conv_block;

    /// <summary>Upsamples <paramref name="numInput"/> channels to <paramref name="numOutput"/> and fuses the skip.</summary>
    public DecoderBlock(long numInput, long numOutput) : base(nameof(DecoderBlock))
    {
        conv_trasp_2d = nn.ConvTranspose2d(numInput, numOutput, 2, stride: 2);
        conv_block = new ConvBlock(numOutput + numOutput, numOutput);
        RegisterComponents();
        DetSeg.Runtime.ConvGuard.Protect(this); // narrow convs: oneDNN computes them wrong on some CPUs
    }

    /// <summary>x [B x in x h x w] and skip [B x out x H x W] (H ∈ {2h, 2h+1}) to [B x out x H x W].</summary>
    public override Tensor forward(Tensor x, Tensor skip)
    {
        var up = DetSeg.Runtime.TransposedConv.Forward(conv_trasp_2d, x); // [B x out x 2h x 2w], as conv_trasp_2d.call(x)
        long dh = skip.shape[2] - up.shape[2], dw = skip.shape[3] - up.shape[3];
        if (dh < 0 || dw < 0)
            throw new ArgumentException($"DecoderBlock: upsampled map [{string.Join(", ", up.shape)}] is larger than the skip [{string.Join(", ", skip.shape)}].");
        if (dh > 0 || dw > 0)
            up = nn.functional.pad(up, [0, dw, 0, dh]); // pad right/bottom: [B x out x H x W]
        var cat = torch.cat([up, skip], dim: 1); // [B x 2·out x H x W]
        return conv_block.call(cat);
    }
}

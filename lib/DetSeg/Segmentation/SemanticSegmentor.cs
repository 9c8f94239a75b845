using DetSeg.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Segmentation;

/// <summary>
/// The course's U-Net: four <see cref="EncoderBlock"/>s, a <see cref="ConvBlock"/> bottleneck, four
/// <see cref="DecoderBlock"/>s fed by the encoder skips, and a 1x1 conv head. Channel widths are
/// <c>width·(1, 2, 4, 8)</c> and a <c>16·width</c> bottleneck: <c>width = 64</c> is the course's model
/// (31,043,586 parameters for 3 → 2 classes); <c>width = 16</c> (1,944,066) is the CPU default.
/// </summary>
/// <remarks>Any input side ≥ 16 works: odd sides are padded back in the decoder (see <see cref="DecoderBlock"/>).</remarks>
public sealed class SemanticSegmentor : nn.Module<Tensor, Tensor>
{
    private readonly EncoderBlock enc_1, enc_2, enc_3, enc_4;
    private readonly ConvBlock bottleneck;
    private readonly DecoderBlock dec_1, dec_2, dec_3, dec_4;
    private readonly Conv2d final_layer;

    /// <summary>Input channels (3 for RGB).</summary>
    public long NumChannels { get; }

    /// <summary>The width of the first encoder block; the others are multiples of it.</summary>
    public long Width { get; }

    /// <summary>Builds the U-Net for <paramref name="numChannels"/> inputs and <paramref name="numClasses"/> classes.</summary>
    /// <param name="numChannels">Input channels (3 for RGB).</param>
    /// <param name="numClasses">Output classes (2 for Penn-Fudan: background, pedestrian).</param>
    /// <param name="width">First block's channels; the course uses 64.</param>
    public SemanticSegmentor(long numChannels, long numClasses, long width = 64) : base(nameof(SemanticSegmentor))
    {
        if (numChannels < 1 || numClasses < 1 || width < 1)
            throw new ArgumentException($"numChannels, numClasses and width must be ≥ 1 (got {numChannels}, {numClasses}, {width}).");
        Width = width;
        NumChannels = numChannels;
        long w1 = width, w2 = 2 * width, w3 = 4 * width, w4 = 8 * width, w5 = 16 * width;
        enc_1 = new EncoderBlock(numChannels, w1);
        enc_2 = new EncoderBlock(w1, w2);
        enc_3 = new EncoderBlock(w2, w3);
        enc_4 = new EncoderBlock(w3, w4);
        bottleneck = new ConvBlock(w4, w5);
        dec_1 = new DecoderBlock(w5, w4);
        dec_2 = new DecoderBlock(w4, w3);
        dec_3 = new DecoderBlock(w3, w2);
        dec_4 = new DecoderBlock(w2, w1);
        final_layer = nn.Conv2d(w1, numClasses, 1, padding: 0L);
        RegisterComponents();
        DetSeg.Runtime.ConvGuard.Protect(this); // narrow convs: oneDNN computes them wrong on some CPUs
    }

    /// <summary>The number format of the weights and activations (see <see cref="WithPrecision"/>).</summary>
    public InferencePrecision Precision { get; private set; } = InferencePrecision.Float32;

    /// <summary>
    /// Converts the model to <paramref name="precision"/> for inference: <c>forward</c> then casts its input to it and
    /// returns float32 logits. For inference only (optimizers and checkpoints expect float32); the weights' dropped bits
    /// are gone, so <see cref="InferencePrecision.Float32"/> afterwards does not restore them: reload the weights to train
    /// or save. Returns this model.
    /// </summary>
    public SemanticSegmentor WithPrecision(InferencePrecision precision)
    {
        this.to(precision.ToScalarType());
        Precision = precision;
        return this;
    }

    /// <summary>[B x numChannels x H x W] to logits [B x numClasses x H x W] (H, W ≥ 16).</summary>
    /// <exception cref="ArgumentException">The input is not 4-D, has another channel count, or a side is below 16.</exception>
    public override Tensor forward(Tensor x)
    {
        if (x.dim() != 4 || x.shape[2] < 16 || x.shape[3] < 16)
            throw new ArgumentException($"SemanticSegmentor expects [B x C x H x W] with H, W ≥ 16 (four 2x2 poolings); got [{string.Join(", ", x.shape)}].", nameof(x));
        if (x.shape[1] != NumChannels)
            throw new ArgumentException($"SemanticSegmentor was built for {NumChannels}-channel images [B x {NumChannels} x H x W]; got [{string.Join(", ", x.shape)}] ({x.shape[1]} channels).", nameof(x));
        using var scope = NewDisposeScope();
        if (Precision != InferencePrecision.Float32) x = x.to(Precision.ToScalarType());
        var (d1, r1) = enc_1.call(x);  // r1 [B x w x H x W]
        var (d2, r2) = enc_2.call(d1); // r2 [B x 2w x H/2 x W/2]
        var (d3, r3) = enc_3.call(d2); // r3 [B x 4w x H/4 x W/4]
        var (d4, r4) = enc_4.call(d3); // r4 [B x 8w x H/8 x W/8]
        var z = bottleneck.call(d4);   // [B x 16w x H/16 x W/16]
        z = dec_1.call(z, r4);
        z = dec_2.call(z, r3);
        z = dec_3.call(z, r2);
        z = dec_4.call(z, r1);         // [B x w x H x W]
        var logits = final_layer.call(z);                         // [B x numClasses x H x W]
        if (Precision != InferencePrecision.Float32) logits = logits.to(ScalarType.Float32); // argmax, loss and metrics see float32
        return logits.MoveToOuterDisposeScope();
    }
}

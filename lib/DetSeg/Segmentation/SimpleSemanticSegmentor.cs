using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Segmentation;

/// <summary>
/// The course's first fully convolutional model: a 4-conv encoder (two stride-2 convs) and a decoder of two
/// stride-2 transposed convs and two convs. Kept exactly as the course gives it, including its size quirk:
/// an input of 256x256 comes out 253x253 (unpadded stride-2 layers lose pixels), so its logits do not line
/// up with the mask — the reason the notebook trains the U-Net (<see cref="SemanticSegmentor"/>) instead.
/// </summary>
public sealed class SimpleSemanticSegmentor : nn.Module<Tensor, Tensor>
{
    private readonly Sequential encoder;
    private readonly Sequential decoder;

    /// <summary>Builds the model for <paramref name="numChannels"/> input channels and <paramref name="numClasses"/> classes.</summary>
    public SimpleSemanticSegmentor(long numChannels, long numClasses) : base(nameof(SimpleSemanticSegmentor))
    {
        if (numChannels < 1 || numClasses < 1)
            throw new ArgumentException($"numChannels and numClasses must be ≥ 1 (got {numChannels}, {numClasses}).");
        encoder = nn.Sequential(
            nn.Conv2d(numChannels, 32, 5, stride: 2, padding: 0L), nn.ReLU(inplace: true),
            nn.Conv2d(32, 64, 5, padding: 2), nn.ReLU(inplace: true),
            nn.Conv2d(64, 64, 5, stride: 2, padding: 0L), nn.ReLU(inplace: true),
            nn.Conv2d(64, 64, 5, padding: 2), nn.ReLU(inplace: true));
        decoder = nn.Sequential(
            nn.ConvTranspose2d(64, 64, 5, stride: 2, padding: 0, output_padding: 0L), nn.ReLU(inplace: true),
            nn.ConvTranspose2d(64, 64, 5, stride: 2, padding: 0, output_padding: 0L), nn.ReLU(inplace: true),
            nn.Conv2d(64, 32, 5, padding: 2), nn.ReLU(inplace: true),
            nn.Conv2d(32, numClasses, 5, padding: 2));
        RegisterComponents();
        DetSeg.Runtime.ConvGuard.Protect(this); // narrow convs: oneDNN computes them wrong on some CPUs
    }

    /// <summary>[B x numChannels x H x W] to logits [B x numClasses x H' x W'] (H' = 4·⌊(⌊(H−5)/2⌋+1−5)/2⌋+… : 256 → 253).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var latent = encoder.call(x); // bottleneck [B x 64 x H/4 x W/4] (roughly)
        return decoder.call(latent).MoveToOuterDisposeScope();
    }
}

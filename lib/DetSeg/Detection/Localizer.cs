using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace DetSeg.Detection;

/// <summary>
/// Classification + localization of ONE object per image: a conv backbone with two heads,
/// class logits [B x C] and a box [B x 4] (the course's <c>Localizer</c>).
/// </summary>
public sealed class Localizer : nn.Module<Tensor, (Tensor logits, Tensor boxes)>
{
    private readonly nn.Module<Tensor, Tensor> backbone, classifier, regressor;

    /// <summary>Builds the model.</summary>
    public Localizer(long numChannels, long numClasses) : base(nameof(Localizer))
    {
        // fixed course bug: the first conv hard-coded 3 input channels and ignored num_channels
        backbone = nn.Sequential(
            nn.Conv2d(numChannels, 128, 5, stride: 2), nn.ReLU(inplace: true),
            nn.Conv2d(128, 64, 5, stride: 2), nn.ReLU(inplace: true),
            nn.Conv2d(64, 32, 5, stride: 2), nn.ReLU(inplace: true),
            nn.Conv2d(32, 32, 5, stride: 2), nn.ReLU(inplace: true),
            nn.Conv2d(32, 64, 5, stride: 2), nn.ReLU(inplace: true),
            nn.AdaptiveAvgPool2d(new long[] { 4, 4 }),
            nn.Flatten(1));                                                  // [B x 1024]
        classifier = nn.Sequential(nn.Linear(64 * 4 * 4, 128), nn.ReLU(inplace: true), nn.Linear(128, numClasses));
        regressor = nn.Sequential(nn.Linear(64 * 4 * 4, 128), nn.ReLU(inplace: true), nn.Linear(128, 4)); // a box needs 4 values
        RegisterComponents();
        DetSeg.Runtime.ConvGuard.Protect(this); // narrow convs: oneDNN computes them wrong on some CPUs
    }

    /// <inheritdoc/>
    public override (Tensor logits, Tensor boxes) forward(Tensor x)
    {
        var features = backbone.call(x);
        return (classifier.call(features), regressor.call(features));
    }

    /// <summary>Multi-task loss (1 − β)·CE(logits, labels) + β·MSE(boxes, true boxes).</summary>
    /// <exception cref="ArgumentException"><paramref name="beta"/> outside [0, 1].</exception>
    public static Tensor Loss((Tensor logits, Tensor boxes) outputs, (Tensor labels, Tensor boxes) truth, double beta = 0.5)
    {
        if (!(beta >= 0 && beta <= 1)) throw new ArgumentException($"beta must be in [0, 1], got {beta}.", nameof(beta));
        var xe = F.cross_entropy(outputs.logits, truth.labels);
        var bb = F.mse_loss(outputs.boxes, truth.boxes);
        // Weights held until return and an explicit alpha: temporary Scalars can be freed mid-call by a GC on
        // another thread (Runtime/Scalars). Same sum as (1 - beta)·xe + beta·bb.
        using Scalar wXe = (1 - beta).ToScalar(), wBb = beta.ToScalar();
        return xe.mul(wXe).add(bb.mul(wBb), DetSeg.Runtime.Scalars.OneL);
    }
}

using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Segmentation;

/// <summary>FCN-8s's trick: turn a classifier's fully connected layers into convolutions that keep the weights.</summary>
public static class FCN
{
    /// <summary>
    /// The course's <c>linear_to_conv2d</c>: a <see cref="Linear"/> that reads a flattened
    /// [C x inHeight x inWidth] feature map becomes a <see cref="Conv2d"/> with kernel inHeight x inWidth and
    /// the same weights, so that <c>linear(x.flatten(1)) == conv(x).flatten(1)</c>; on larger maps the conv
    /// slides and yields a map of class scores instead of one vector.
    /// </summary>
    /// <param name="linear">The layer to convert; its in_features must be C·inHeight·inWidth.</param>
    /// <param name="inHeight">Height of the feature map the linear layer read.</param>
    /// <param name="inWidth">Its width; null means square (= <paramref name="inHeight"/>).</param>
    /// <exception cref="ArgumentException">in_features is not divisible by inHeight·inWidth.</exception>
    public static Conv2d LinearToConv2d(Linear linear, long inHeight = 1, long? inWidth = null)
    {
        ArgumentNullException.ThrowIfNull(linear);
        long w = inWidth ?? inHeight;
        long inFeatures = linear.weight!.shape[1], outFeatures = linear.weight.shape[0];
        if (inHeight < 1 || w < 1 || inFeatures % (inHeight * w) != 0)
            throw new ArgumentException($"LinearToConv2d: in_features {inFeatures} is not C x {inHeight} x {w} for a whole C.", nameof(linear));
        bool hasBias = linear.bias is not null;
        var conv = nn.Conv2d(inFeatures / (inHeight * w), outFeatures, (inHeight, w), bias: hasBias,
            device: linear.weight.device, dtype: linear.weight.dtype);
        using (torch.no_grad())
        {
            // Linear weight [out x (C·h·w)] is row-major over (C, h, w): a view as [out x C x h x w] is the kernel.
            conv.weight!.copy_(linear.weight.view(conv.weight.shape));
            if (hasBias) conv.bias!.copy_(linear.bias!);
        }
        return DetSeg.Runtime.ConvGuard.Protect(conv);
    }
}

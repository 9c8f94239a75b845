using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Detection;

/// <summary>Anchor priors for a dataset: the course's lattice around the mean box size, or k-means with IoU distance.</summary>
public static class Anchors
{
    /// <summary>The course's 9 lattice points in units of the size std, a 90°-rotated 3x3 grid; row 0 is the largest set (y1).</summary>
    public static readonly float[,,] LatticeOffsets =
    {
        { { 0, 2 }, { 1, 1 }, { 2, 0 } },
        { { -1, 1 }, { 0, 0 }, { 1, -1 } },
        { { -2, 0 }, { -1, -1 }, { 0, -2 } },
    };

    /// <summary>The mean and std (w, h) the course measured on the first 10,000 MNIST-clutter images (its printed values).</summary>
    public static (Tensor std, Tensor mean) CourseBoxStats() => (tensor(new[] { 0.0392f, 0.0288f }), tensor(new[] { 0.1238f, 0.1536f }));

    /// <summary>Lattice anchors [3 x 3 x 2] (normalized w, h) = offsets × std + mean.</summary>
    public static Tensor Lattice(Tensor std, Tensor mean)
    {
        if (std.numel() != 2 || mean.numel() != 2) throw new ArgumentException("std and mean must hold (w, h).");
        return tensor(LatticeOffsets).to(std.device) * std.view(1, 1, 2) + mean.view(1, 1, 2);
    }

    /// <summary>Normalized anchors to whole pixels of an <paramref name="imageSize"/> image (the course's round().long()).</summary>
    public static Tensor ToPixels(Tensor normalized, int imageSize) => (normalized * imageSize).round().to(int64);

    /// <summary>Widths and heights [N x 2] of the valid boxes of detection items or batches (boxes at index 1, labels at 2).</summary>
    public static Tensor BoxSizes(IEnumerable<Tensor[]> itemsOrBatches, int maxImages = int.MaxValue)
    {
        var parts = new List<Tensor>();
        long seen = 0;
        foreach (var x in itemsOrBatches)
        {
            if (seen >= maxImages) break;
            var boxes = x[1]; var labels = x[2];
            var wh = boxes[TensorIndex.Ellipsis, TensorIndex.Slice(2, 4)];
            parts.Add(wh[labels >= 0].reshape(-1, 2).detach().cpu().clone());
            seen += boxes.dim() == 3 ? boxes.shape[0] : 1;
        }
        return parts.Count == 0 ? zeros(0, 2) : cat(parts.ToArray());
    }

    /// <summary>Mean over boxes of the best size-IoU with any anchor (higher = anchors fit the data better).</summary>
    public static double MeanBestIou(Tensor wh, Tensor anchorsWh) =>
        BoxOps.SizeIou(wh.to(float32), anchorsWh.reshape(-1, 2).to(float32).to(wh.device)).amax(new long[] { -1 }).mean().item<float>();

    /// <summary>
    /// k-means on box sizes with distance 1 − IoU (YOLOv2's anchor clustering), k-means++ seeding from
    /// <paramref name="seed"/>, best of <paramref name="restarts"/> runs by mean best IoU.
    /// Returns [3 x k/3 x 2] normalized (w, h), largest area first (set y1).
    /// </summary>
    public static Tensor KMeans(Tensor wh, int k = 9, int iterations = 100, long seed = 0, int restarts = 5)
    {
        Tensor? best = null; double bestFit = double.NegativeInfinity;
        for (int r = 0; r < Math.Max(1, restarts); r++)
        {
            var a = KMeansOnce(wh, k, iterations, seed + 7919 * r);
            double fit = MeanBestIou(wh, a);
            if (fit > bestFit) { best?.Dispose(); best = a; bestFit = fit; } else a.Dispose();
        }
        return best!;
    }

    static Tensor KMeansOnce(Tensor wh, int k, int iterations, long seed)
    {
        if (wh.dim() != 2 || wh.shape[1] != 2) throw new ArgumentException($"wh must be [N x 2], got [{string.Join(", ", wh.shape)}].", nameof(wh));
        if (k % 3 != 0 || k < 3) throw new ArgumentException($"k must be a positive multiple of 3 (three detection sets), got {k}.", nameof(k));
        if (wh.shape[0] < k) throw new ArgumentException($"k-means needs at least k = {k} boxes, got {wh.shape[0]}.", nameof(wh));
        using var scope = NewDisposeScope();
        var x = wh.to(float32);
        // The draws use a CPU generator on whatever device x is: the same seed picks the same centres on the CPU
        // and on CUDA (a CUDA generator also crashed the TorchSharp 0.107 binding over a newer CUDA libtorch).
        using var gen = new Generator((ulong)seed, new Device(DeviceType.CPU));
        // k-means++: each next centre drawn with probability ∝ distance² to the nearest chosen one
        var centres = x[randint(0, x.shape[0], new long[] { 1 }, generator: gen).to(x.device)].clone();
        while (centres.shape[0] < k)
        {
            var d = 1 - BoxOps.SizeIou(x, centres).amax(new long[] { -1 });     // [N]
            var pick = multinomial((d.pow(2) + 1e-12).cpu(), 1, generator: gen).to(x.device);
            centres = cat(new[] { centres, x[pick] });
        }
        for (int it = 0; it < iterations; it++)
        {
            var assign = BoxOps.SizeIou(x, centres).argmax(-1);                  // [N]
            var sums = zeros(k, 2, device: x.device).index_add_(0, assign, x, 1);
            var counts = bincount(assign, minlength: k).to(float32).unsqueeze(1);
            var updated = where(counts > 0, sums / counts.clamp_min(1), centres); // empty cluster: keep its centre
            bool done = (updated - centres).abs().max().item<float>() < 1e-7;
            centres = updated;
            if (done) break;
        }
        var order = (centres[.., 0] * centres[.., 1]).argsort(0, descending: true);
        return centres[order].view(3, k / 3, 2).MoveToOuterDisposeScope();
    }
}

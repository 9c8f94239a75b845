using System.Runtime.InteropServices;
using TorchSharp;
using static DetSeg.Runtime.Scalars;
using static TorchSharp.torch;

namespace DetSeg.Data;

/// <summary>
/// Detection view of <see cref="MNISTClutter"/> (the course's <c>MCDetection</c>): item = [image <c>[3 x S x S]</c>,
/// boxes <c>[MaxNumDigits x 4]</c> float (cx, cy, w, h) normalized by the image size and zero-padded,
/// labels <c>[MaxNumDigits]</c> int64 padded with -1]. Objects are ordered by instance id, as the seed's
/// <c>unique()</c> does.
/// </summary>
/// <remarks>
/// Box convention (a fixed course bug): a pixel i covers [i, i + 1), so an object spanning columns
/// x_min..x_max is <c>x_max - x_min + 1</c> wide with centre <c>(x_min + x_max + 1) / 2</c>. The seed used
/// <c>x_max - x_min</c> and <c>x_min + (x_max - x_min) / 2</c>: its boxes miss the last row and column (and a
/// one-pixel-wide object got width 0, so YOLO's log(w) loss became infinite). <c>seedCompat: true</c> gives
/// the seed's numbers.
/// </remarks>
public sealed class MCDetection : IDataset<Tensor[]>, IBatchedDataset, IDatasetWrapper
{
    /// <summary>Wraps <paramref name="dataset"/> (default: <c>new MNISTClutter(instance: true)</c>).</summary>
    /// <param name="dataset">Instance-mask clutter images.</param>
    /// <param name="seedCompat">Reproduce the seed's one-pixel-short boxes.</param>
    /// <exception cref="ArgumentException">The clutter dataset makes semantic masks.</exception>
    public MCDetection(MNISTClutter? dataset = null, bool seedCompat = false)
    {
        Dataset = dataset ?? new MNISTClutter(instance: true);
        if (!Dataset.Instance)
            throw new ArgumentException("MCDetection needs instance masks (MNISTClutter(instance: true)): boxes are per digit.", nameof(dataset));
        SeedCompat = seedCompat;
    }

    /// <summary>The clutter images.</summary>
    public MNISTClutter Dataset { get; }
    /// <summary>Whether boxes follow the seed's one-pixel-short convention.</summary>
    public bool SeedCompat { get; }
    /// <summary>Boxes per item (padded).</summary>
    public int MaxNumDigits => Dataset.MaxNumDigits;
    /// <inheritdoc/>
    public int Count => Dataset.Count;
    object IDatasetWrapper.Inner => Dataset;

    /// <inheritdoc/>
    public Tensor[] this[int index] => GetBatch([index]).Select(t => { var item = t[0]; t.Dispose(); return item; }).ToArray();

    /// <inheritdoc/>
    public Tensor[] GetBatch(IReadOnlyList<int> indices)
    {
        using var scope = NewDisposeScope();
        var (images, masks, draws) = Dataset.Render(indices);
        var (boxes, labels) = BoxesOfDraws(masks, draws, MaxNumDigits, MaxNumDigits, SeedCompat);
        return [images.MoveToOuterDisposeScope(), boxes.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope()];
    }

    /// <summary>
    /// <see cref="MaskToBoundingBoxes"/> for a rendered batch, without its per-image <c>unique()</c> and upload: the
    /// renderer knows the ids it drew, so the candidates go to the device once per batch, and the digits that ended up
    /// hidden under others (no pixel left) drop out on the device. Same boxes, labels, order and padding.
    /// </summary>
    internal static (Tensor Boxes, Tensor Labels) BoxesOfDraws(Tensor masks, MNISTClutter.DigitDraw[][] draws, int maxObjectsPerClass, int maxObjects, bool seedCompat)
    {
        var candidates = Candidates(masks, draws, maxObjects);
        return masks.device.type == DeviceType.CPU && masks.is_contiguous()
            ? BoxesOnHost(masks, candidates, maxObjectsPerClass, maxObjects, seedCompat)
            : BoxesWithTensors(masks, candidates, maxObjectsPerClass, maxObjects, seedCompat);
    }

    /// <summary>Per image, the distinct drawn ids ascending (the seed's <c>unique()</c>), padded with -2 (never a
    /// mask value: ids ≥ 0, background -1) to <c>[B·K]</c>.</summary>
    static long[] Candidates(Tensor masks, MNISTClutter.DigitDraw[][] draws, int K)
    {
        long B = masks.shape[0];
        if (draws.Length != B) throw new ArgumentException($"{draws.Length} draw lists for {B} masks.", nameof(draws));
        var candidates = new long[B * K];
        Array.Fill(candidates, -2L);
        for (int b = 0; b < B; b++)
        {
            var ids = draws[b].Select(d => d.Id).Distinct().Order().ToArray();
            if (ids.Length > K) throw new ArgumentException($"Image {b} holds {ids.Length} objects, more than maxObjects = {K}.", "maxObjects");
            ids.CopyTo(candidates, b * K);
        }
        return candidates;
    }

    /// <summary><see cref="BoxesWithTensors"/> for host masks, in one pass over each mask: the same float32
    /// arithmetic on the extents (sums of small integers, halves, one division by the side).</summary>
    static (Tensor Boxes, Tensor Labels) BoxesOnHost(Tensor masks, long[] candidates, int maxObjectsPerClass, int K, bool seedCompat)
    {
        int B = (int)masks.shape[0], H = (int)masks.shape[1], W = (int)masks.shape[2];
        var cpu = new Device(DeviceType.CPU);
        using var scope = NewDisposeScope();
        var boxes = zeros([B, K, 4], ScalarType.Float32, cpu);                 // [B x K x 4]
        var labels = full([B, K], MinusOneL, ScalarType.Int64, cpu);            // [B x K]
        var box = MemoryMarshal.Cast<byte, float>(boxes.bytes);
        var label = MemoryMarshal.Cast<byte, long>(labels.bytes);
        ReadOnlySpan<long> all = MemoryMarshal.Cast<byte, long>(masks.bytes);
        Span<int> xMin = stackalloc int[K], xMax = stackalloc int[K], yMin = stackalloc int[K], yMax = stackalloc int[K];
        for (int b = 0; b < B; b++)
        {
            var ids = candidates.AsSpan(b * K, K);
            xMin.Fill(int.MaxValue); yMin.Fill(int.MaxValue); xMax.Fill(-1); yMax.Fill(-1);
            var mask = all.Slice(b * H * W, H * W);
            for (int y = 0, at = 0; y < H; y++)
                for (int x = 0; x < W; x++, at++)
                {
                    long v = mask[at];
                    if (v < 0) continue;
                    int k = ids.IndexOf(v);
                    if (k < 0) continue;
                    if (x < xMin[k]) xMin[k] = x;
                    if (x > xMax[k]) xMax[k] = x;
                    if (y < yMin[k]) yMin[k] = y;
                    if (y > yMax[k]) yMax[k] = y;
                }
            int n = 0;                                                           // visible ids ascending, then padding
            for (int k = 0; k < K; k++)
            {
                if (xMax[k] < 0) continue;
                float x0 = xMin[k], x1 = xMax[k], y0 = yMin[k], y1 = yMax[k];
                var o = box.Slice((b * K + n) * 4, 4);
                if (seedCompat) { o[0] = (x0 + (x1 - x0) / 2) / W; o[1] = (y0 + (y1 - y0) / 2) / H; o[2] = (x1 - x0) / W; o[3] = (y1 - y0) / H; }
                else { o[0] = (x0 + x1 + 1) / 2 / W; o[1] = (y0 + y1 + 1) / 2 / H; o[2] = (x1 - x0 + 1) / W; o[3] = (y1 - y0 + 1) / H; }
                label[b * K + n] = ids[k] / maxObjectsPerClass;
                n++;
            }
        }
        return (boxes.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope());
    }

    /// <summary>The boxes of the drawn ids as tensor ops on the masks' device (GPUs).</summary>
    internal static (Tensor Boxes, Tensor Labels) BoxesWithTensors(Tensor masks, long[] candidates, int maxObjectsPerClass, int maxObjects, bool seedCompat)
    {
        long B = masks.shape[0], H = masks.shape[1], W = masks.shape[2];
        int K = maxObjects;
        // Scalars held for the calls: an implicit C# number -> Scalar temporary can be finalized while the native op
        // still reads it when another thread triggers a GC (this runs on DataLoader workers).
        using Scalar big = long.MaxValue, minusOne = -1L, zero = 0f, perClass = (long)maxObjectsPerClass;
        using var scope = NewDisposeScope();
        var cand = tensor(candidates, [B, K], device: masks.device);         // [B x K]
        var objects = cand.view(B, K, 1, 1).eq(masks.unsqueeze(1));          // [B x K x H x W]
        var cols = objects.any(2).view(B * K, W);                            // [B·K x W]: columns touched
        var rows = objects.any(3).view(B * K, H);                            // [B·K x H]
        var present = cols.any(1).view(B, K);                                // [B x K]: visible in the mask
        var boxes = BoxesOf(cols, rows, W, H, seedCompat, masks.device).view(B, K, 4);
        var order = cand.masked_fill(present.logical_not(), big).argsort(1); // visible ids ascending, then the rest
        var shown = present.gather(1, order);                                // [B x K]
        var sortedBoxes = boxes.gather(1, order.unsqueeze(-1).expand(B, K, 4)).masked_fill(shown.logical_not().unsqueeze(-1), zero);
        var labels = cand.div(perClass, RoundingMode.floor).gather(1, order).masked_fill(shown.logical_not(), minusOne);
        return (sortedBoxes.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope());
    }

    /// <summary>Normalized (cx, cy, w, h) <c>[U x 4]</c> from the columns <c>[U x W]</c> and rows <c>[U x H]</c> each object touches.</summary>
    static Tensor BoxesOf(Tensor cols, Tensor rows, long W, long H, bool seedCompat, Device device)
    {
        // Cached Scalars and explicit alphas throughout: this runs on DataLoader workers (see Runtime/Scalars).
        var (xMin, xMax) = Extent(cols, W);
        var (yMin, yMax) = Extent(rows, H);
        Tensor cx, cy, w, h;
        if (seedCompat)
        {
            cx = xMin.add(xMax.sub(xMin).div(TwoL), OneL); cy = yMin.add(yMax.sub(yMin).div(TwoL), OneL);
            w = xMax.sub(xMin); h = yMax.sub(yMin);
        }
        else
        {
            cx = xMin.add(xMax, OneL).add(OneL, OneL).div(TwoL); cy = yMin.add(yMax, OneL).add(OneL, OneL).div(TwoL);
            w = xMax.sub(xMin).add(OneL, OneL); h = yMax.sub(yMin).add(OneL, OneL);
        }
        var scale = tensor(new float[] { W, H, W, H }, device: device);
        return stack([cx, cy, w, h], 1).div(scale);                          // [U x 4]
    }

    /// <summary>
    /// Boxes of every object in instance masks: <paramref name="masks"/> is <c>[H x W]</c> or <c>[B x H x W]</c> int64
    /// with ids ≥ 0 (negative = background). Returns boxes <c>[(B x) N x 4]</c> as normalized (cx, cy, w, h) and
    /// labels <c>id / maxObjectsPerClass</c> <c>[(B x) N]</c>, sorted by id, zero / -1 padded up to
    /// <paramref name="maxObjects"/> (default: the most objects in any mask). Runs on the masks' device.
    /// </summary>
    /// <exception cref="ArgumentException">Not int64, wrong rank, or more objects than <paramref name="maxObjects"/>.</exception>
    public static (Tensor Boxes, Tensor Labels) MaskToBoundingBoxes(Tensor masks, int maxObjectsPerClass = 1, int? maxObjects = null, bool seedCompat = false)
    {
        if (masks.dtype != ScalarType.Int64)
            throw new ArgumentException($"masks must be int64, got {masks.dtype}.", nameof(masks));
        if (masks.dim() is not (2 or 3))
            throw new ArgumentException($"masks must be [H x W] or [B x H x W], got [{string.Join(" x ", masks.shape)}].", nameof(masks));
        bool single = masks.dim() == 2;
        using var scope = NewDisposeScope();
        var m = single ? masks.unsqueeze(0) : masks;                         // [B x H x W]
        long B = m.shape[0], H = m.shape[1], W = m.shape[2];
        var perImage = new List<(Tensor Boxes, Tensor Labels)>();
        using var perClass = maxObjectsPerClass.ToScalar();
        for (long b = 0; b < B; b++)
        {
            var mask = m[b];
            var (ids, _, _) = mask.masked_select(mask.ge(ZeroL)).unique();      // [U] ascending
            var objects = ids.view(-1, 1, 1).eq(mask);                       // [U x H x W]
            var cols = objects.any(1);                                       // [U x W]: columns touched
            var rows = objects.any(2);                                       // [U x H]
            var boxes = BoxesOf(cols, rows, W, H, seedCompat, masks.device);  // [U x 4]
            perImage.Add((boxes, ids.div(perClass, RoundingMode.floor)));
        }
        long n = maxObjects ?? perImage.Max(p => p.Boxes.shape[0]);
        long most = perImage.Max(p => p.Boxes.shape[0]);
        if (most > n)
            throw new ArgumentException($"A mask holds {most} objects, more than maxObjects = {n}.", nameof(maxObjects));
        var allBoxes = stack(perImage.Select(p => nn.functional.pad(p.Boxes, [0, 0, 0, n - p.Boxes.shape[0]], PaddingModes.Constant, 0)));
        var allLabels = stack(perImage.Select(p => nn.functional.pad(p.Labels, [0, n - p.Labels.shape[0]], PaddingModes.Constant, -1)));
        if (single) { allBoxes = allBoxes[0]; allLabels = allLabels[0]; }
        return (allBoxes.MoveToOuterDisposeScope(), allLabels.MoveToOuterDisposeScope());
    }

    /// <summary>First and last true index along the last dim of <c>[U x L]</c> bools, as float.</summary>
    static (Tensor Min, Tensor Max) Extent(Tensor touched, long length)
    {
        using Scalar stop = length, fill = (float)length;                       // held: see BoxesOfDraws
        var pos = arange(ZeroL, stop, OneL, ScalarType.Float32, touched.device); // [L]; arange(stop) makes start and step as temporaries
        var big = full(new long[] { 1 }, fill, ScalarType.Float32, touched.device);
        var min = where(touched, pos, big).amin([1]);
        var max = where(touched, pos, big.neg()).amax([1]);
        return (min, max);
    }

    /// <summary>The image with its labelled boxes (the course's <c>plot_image_with_boxes</c>); a random item when
    /// <paramref name="index"/> is null.</summary>
    public Plots.Figure Show(int? index = null)
    {
        int i = index ?? Random.Shared.Next(Count);
        var item = this[i];
        using var scope = NewDisposeScope();
        foreach (var t in item) t.MoveToOtherDisposeScope(scope);   // disposed with the scope
        var (image, boxes, labels) = (item[0], item[1], item[2]);
        long S = image.shape[^1];
        var valid = labels.ge(ZeroL);
        using var side = S.ToScalar();
        var b = boxes[valid].mul(side);                                                    // [N x 4] cx, cy, w, h in pixels
        var xyxy = cat([b[.., ..2].sub(b[.., 2..].div(TwoL)), b[.., ..2].add(b[.., 2..].div(TwoL), OneL)], 1);  // [N x 4]
        var names = labels[valid].cpu().data<long>().Select(l => l.ToString()).ToList();
        return Plots.Charts.Image(image, Plots.Box.FromTensor(xyxy, names), title: $"{i}: {names.Count} digits");
    }

    /// <inheritdoc/>
    public override string ToString() => $"MCDetection(num_images={Count}, max_num_digits={MaxNumDigits}, seed_compat={SeedCompat})";
}

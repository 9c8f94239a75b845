using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Data.Formats;

/// <summary>
/// Turns any <see cref="IAnnotatedDataset"/> into the items the course's pipelines take: Penn-Fudan items for
/// <see cref="PFSegmentation"/> (and so the segmentation trainer, metrics and plots), and MCDetection-shaped
/// [image, boxes, labels] items for the YOLOv3 trainer; and MNIST clutter into annotated images for export.
/// </summary>
public static class AnnotatedAdapters
{
    /// <summary>Items (name, image, instance mask) for <c>new PFSegmentation(dataset.AsSegmentation())</c>.</summary>
    public static IDataset<PennFudanItem> AsSegmentation(this IAnnotatedDataset dataset) => new SegmentationView(dataset);

    /// <summary>
    /// MCDetection-shaped items: image [3 x S x S] float in [0, 1] (resized keeping its aspect, centred on grey 0.5),
    /// boxes [maxObjects x 4] (cx, cy, w, h) as fractions of the S canvas, labels [maxObjects] (-1 pads).
    /// </summary>
    public static IDataset<Tensor[]> AsDetection(this IAnnotatedDataset dataset, int imageSize, int maxObjects) =>
        new DetectionView(dataset, imageSize, maxObjects);

    /// <summary>
    /// MNIST clutter images as annotated images: object k is the k-th distinct instance id in ascending order, its label the
    /// digit (id / MaxNumDigits), its box from its pixels; the image is rounded to bytes.
    /// </summary>
    public static IEnumerable<AnnotatedImage> FromMnistClutter(MNISTClutter clutter, IEnumerable<int> indices)
    {
        if (!clutter.Instance) throw new ArgumentException("FromMnistClutter needs instance masks (MNISTClutter(instance: true)).", nameof(clutter));
        foreach (int i in indices)
        {
            var item = clutter[i];
            using var scope = NewDisposeScope();
            foreach (var t in item) t.MoveToOtherDisposeScope(scope);
            var (image, mask) = (item[0].cpu(), item[1].cpu());                   // [3 x S x S] float, [S x S] ids (-1 background)
            var (ids, _, _) = mask.masked_select(mask.ge(0)).unique();         // ascending
            var dense = zeros_like(mask);
            var idList = ids.data<long>().ToArray();
            for (int k = 0; k < idList.Length; k++) dense.masked_fill_(mask.eq(idList[k]), k + 1);
            var boxes = MaskBoxes.FromInstanceMask(dense, idList.Length);
            var labels = ids.div(clutter.MaxNumDigits, RoundingMode.floor);
            var bytes = image.mul(255).round().clamp(0, 255).to(ScalarType.Byte);
            yield return new AnnotatedImage($"clutter_{i:D6}", bytes.MoveToOuterDisposeScope(), boxes.MoveToOuterDisposeScope(),
                labels.MoveToOuterDisposeScope(), dense.MoveToOuterDisposeScope());
        }
    }

    sealed class SegmentationView(IAnnotatedDataset inner) : IDataset<PennFudanItem>, IDatasetWrapper
    {
        public int Count => inner.Count;
        public object Inner => inner;
        public PennFudanItem this[int index]
        {
            get
            {
                var item = inner[index];
                if (item.InstanceMask is null)
                {
                    item.Dispose();
                    throw new InvalidOperationException($"{item.Name}: {inner.GetType().Name} items have no masks, so they cannot train segmentation.");
                }
                item.Boxes.Dispose(); item.Labels.Dispose();
                return new PennFudanItem(Path.GetFileNameWithoutExtension(item.Name), item.Image, item.InstanceMask);
            }
        }
    }

    sealed class DetectionView(IAnnotatedDataset inner, int size, int maxObjects) : IDataset<Tensor[]>, IDatasetWrapper
    {
        public int Count => inner.Count;
        public object Inner => inner;
        public Tensor[] this[int index]
        {
            get
            {
                using var item = inner[index];
                if (item.Count > maxObjects)
                    throw new InvalidOperationException($"{item.Name} has {item.Count} objects, more than maxObjects = {maxObjects}.");
                using var scope = NewDisposeScope();
                var (canvas, sx, sy, left, top) = LetterboxTensor(item.Image, size);
                // Runs on DataLoader workers: held Scalars and explicit alphas only (no `+`, `/ 2`; see Runtime/Scalars).
                using Scalar sizeS = size;
                var one = Runtime.Scalars.OneL; var two = Runtime.Scalars.TwoL;
                var b = (item.Boxes * tensor(new[] { sx, sy, sx, sy })).add(tensor(new[] { left, top, left, top }), one); // xyxy on the canvas
                var cxcywh = stack([b[.., 0].add(b[.., 2], one).div(two), b[.., 1].add(b[.., 3], one).div(two), b[.., 2] - b[.., 0], b[.., 3] - b[.., 1]], 1).div(sizeS);
                long pad = maxObjects - item.Count;
                var boxes = nn.functional.pad(cxcywh, [0, 0, 0, pad]);
                var labels = nn.functional.pad(item.Labels, [0, pad], value: -1);
                return [canvas.MoveToOuterDisposeScope(), boxes.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope()];
            }
        }
    }

    /// <summary>
    /// Resizes a [3 x H x W] uint8 image to fit S x S keeping its aspect (bilinear) and centres it on grey 0.5: the canvas
    /// [3 x S x S] in [0, 1], the x and y scales, and the left/top offsets in canvas pixels (canvas = image · scale + offset).
    /// </summary>
    public static (Tensor Canvas, float ScaleX, float ScaleY, float Left, float Top) LetterboxTensor(Tensor image, int size)
    {
        long H = image.shape[1], W = image.shape[2];
        float scale = (float)Math.Min((double)size / W, (double)size / H);
        long w = Math.Max(1, (long)Math.Round(W * scale)), h = Math.Max(1, (long)Math.Round(H * scale));
        using var scope = NewDisposeScope();
        var x = image.to(ScalarType.Float32).div(Runtime.Scalars.Max8Bit).unsqueeze(0); // held Scalars: DataLoader workers
        if (w != W || h != H) x = nn.functional.interpolate(x, [h, w], mode: InterpolationMode.Bilinear, align_corners: false);
        var canvas = full(3, size, size, Runtime.Scalars.OneHalf, dtype: ScalarType.Float32, device: image.device);
        long top = (size - h) / 2, left = (size - w) / 2;
        canvas[TensorIndex.Colon, TensorIndex.Slice(top, top + h), TensorIndex.Slice(left, left + w)] = x[0];
        // per-axis scales as the boxes see them: the resized image spans exactly w x h
        return (canvas.MoveToOuterDisposeScope(), (float)w / W, (float)h / H, left, top);
    }
}

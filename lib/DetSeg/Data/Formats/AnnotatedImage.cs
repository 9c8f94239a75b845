using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Data.Formats;

/// <summary>
/// One labelled image as the file formats describe it, before any resizing: the common item of
/// <see cref="CocoDataset"/>, <see cref="YoloDataset"/> and <see cref="ImageMaskFolder"/>.
/// </summary>
/// <param name="Name">The image's file name without folder (COCO <c>file_name</c>).</param>
/// <param name="Image">[3 x H x W] uint8 RGB.</param>
/// <param name="Boxes">[N x 4] float32 (x1, y1, x2, y2) in pixels: a box covering pixel columns a..b has x1 = a, x2 = b + 1 (COCO's x, x + w).</param>
/// <param name="Labels">[N] int64 class indices into the dataset's <see cref="IAnnotatedDataset.Classes"/>.</param>
/// <param name="InstanceMask">[H x W] int64, 0 background and i + 1 on object i's pixels; null when the format has no masks.</param>
public sealed record AnnotatedImage(string Name, Tensor Image, Tensor Boxes, Tensor Labels, Tensor? InstanceMask) : IDisposable
{
    /// <summary>Objects in the image.</summary>
    public long Count => Labels.shape[0];
    /// <summary>Image height.</summary>
    public long Height => Image.shape[1];
    /// <summary>Image width.</summary>
    public long Width => Image.shape[2];

    /// <inheritdoc/>
    public void Dispose()
    {
        Image.Dispose(); Boxes.Dispose(); Labels.Dispose(); InstanceMask?.Dispose();
    }
}

/// <summary>A dataset of <see cref="AnnotatedImage"/>s with named classes.</summary>
public interface IAnnotatedDataset : IDataset<AnnotatedImage>
{
    /// <summary>Class names; a label is an index into this list.</summary>
    IReadOnlyList<string> Classes { get; }
}

/// <summary>Boxes from instance masks, in <see cref="AnnotatedImage"/>'s pixel-edge convention.</summary>
public static class MaskBoxes
{
    /// <summary>
    /// One box per object id 1..N of an instance mask [H x W] (0 and negatives are background): (min col, min row,
    /// max col + 1, max row + 1) as [N x 4] float32. An id with no pixels gets an all-zero box.
    /// </summary>
    public static Tensor FromInstanceMask(Tensor mask, long numObjects)
    {
        if (mask.dim() != 2) throw new ArgumentException($"An instance mask is [H x W], got [{string.Join(" x ", mask.shape)}].", nameof(mask));
        using var scope = NewDisposeScope();
        // Per item on DataLoader workers: Scalars held until return, never temporaries (see Runtime/Scalars).
        using Scalar stop = numObjects + 1;
        var ids = arange(DetSeg.Runtime.Scalars.OneL, stop, DetSeg.Runtime.Scalars.OneL, ScalarType.Int64, mask.device).view(-1, 1, 1);
        var objects = mask.unsqueeze(0).eq(ids);                                  // [N x H x W]
        long H = mask.shape[0], W = mask.shape[1];
        var (x1, x2) = Extent(objects.any(1), W);                                 // columns touched
        var (y1, y2) = Extent(objects.any(2), H);
        return stack([x1, y1, x2, y2], 1).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    static (Tensor Min, Tensor MaxPlusOne) Extent(Tensor touched, long length)
    {
        using Scalar stop = length;
        var pos = arange(DetSeg.Runtime.Scalars.ZeroL, stop, DetSeg.Runtime.Scalars.OneL, ScalarType.Int64, touched.device);
        var any = touched.any(1);
        var min = where(touched, pos, length).amin([1]);
        var max = where(touched, pos, -1L).amax([1]).add(DetSeg.Runtime.Scalars.OneL, DetSeg.Runtime.Scalars.OneL);
        return (where(any, min, 0L), where(any, max, 0L));
    }

    /// <summary>IoU of each box in <paramref name="a"/> [N x 4] with the same row of <paramref name="b"/> [N x 4] (xyxy).</summary>
    public static Tensor PairwiseIoU(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var lt = maximum(a[.., ..2], b[.., ..2]);
        var rb = minimum(a[.., 2..], b[.., 2..]);
        var inter = (rb - lt).clamp_min(DetSeg.Runtime.Scalars.ZeroL).prod(1);
        var area = (Tensor t) => (t[.., 2] - t[.., 0]) * (t[.., 3] - t[.., 1]);
        return (inter / (area(a).add(area(b), DetSeg.Runtime.Scalars.OneL) - inter)).MoveToOuterDisposeScope();
    }
}

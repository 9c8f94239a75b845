using TorchSharp;
using static DetSeg.Runtime.Scalars;
using static TorchSharp.torch;

namespace DetSeg.Data;

/// <summary>
/// Penn-Fudan for semantic segmentation (the course's <c>PFSegmentation</c>): item = [image <c>[3 x S x S]</c>
/// float, normalized with the course's mean/std; mask <c>[S x S]</c> int64: 1 pedestrian, 0 background,
/// -1 padding]. Each image is padded to a square (grey 128) and resized to <see cref="ImageSize"/> with
/// PIL's nearest rule, like the seed's <c>ImageOps.pad</c>.
/// </summary>
/// <remarks>
/// With <see cref="Training"/> on, the seed's augmentation runs on tensors on <see cref="Device"/>: colour
/// jitter (0.1, 0.1, 0.1, 0.1) with p = 0.5; horizontal flip of image AND mask with p = 0.5; Gaussian blur
/// (kernel 5, σ ∈ [0.1, 2)) with p = 0.5; then with p = 0.5 both jitter and blur again in random order
/// (the seed's RandomOrder; it doubles the augmentation, probably unintended, kept as the algorithm).
/// Random draws come from this dataset's own generator (<c>seed</c>), so a run can be replayed.
/// </remarks>
public sealed class PFSegmentation : IDataset<Tensor[]>, IDatasetWrapper
{
    readonly Generator rng;

    /// <summary>
    /// The augmentation generator. Pass it to <c>TrainOptions.Generators</c> so that a resumed run draws the
    /// same augmentations as an uninterrupted one.
    /// </summary>
    public Generator AugmentationGenerator => rng;
    readonly Lock rngLock = new();

    /// <summary>Wraps <paramref name="dataset"/> (default: <c>new PennFudan()</c>; a <see cref="Subset{T}"/> of it works too).</summary>
    /// <param name="dataset">Penn-Fudan items.</param>
    /// <param name="imageSize">Side of the square output (the seed: 256).</param>
    /// <param name="seed">Seed of the augmentation generator (null: random).</param>
    /// <param name="device">Where the augmentation runs and items live (default <see cref="Runtime.Device.Default"/>).</param>
    /// <exception cref="ArgumentException"><paramref name="imageSize"/> &lt; 1.</exception>
    public PFSegmentation(IDataset<PennFudanItem>? dataset = null, int imageSize = 256, long? seed = null, torch.Device? device = null)
    {
        if (imageSize < 1) throw new ArgumentException($"imageSize must be ≥ 1, got {imageSize}.", nameof(imageSize));
        Dataset = dataset ?? new PennFudan();
        ImageSize = imageSize;
        Device = device ?? Runtime.Device.Default;
        rng = new Generator((ulong)(seed ?? Random.Shared.NextInt64()), new torch.Device(DeviceType.CPU));
    }

    /// <summary>The wrapped Penn-Fudan items.</summary>
    public IDataset<PennFudanItem> Dataset { get; }
    /// <summary>Side of the square output.</summary>
    public int ImageSize { get; }
    /// <summary>Where items are built.</summary>
    public torch.Device Device { get; }
    /// <summary>Apply the random augmentation (off by default, as in the seed).</summary>
    public bool Training { get; set; }
    /// <inheritdoc/>
    public int Count => Dataset.Count;
    object IDatasetWrapper.Inner => Dataset;

    /// <summary>The image name of item <paramref name="index"/> (through any subset).</summary>
    public string Name(int index)
    {
        DatasetExtensions.CheckIndex(index, Count, "PFSegmentation");
        if (Source(index) is (PennFudan pennFudan, int at)) return pennFudan.FileNames[at];
        using var item = Dataset[index];
        return item.Name;
    }

    /// <summary>The dataset under any subsets of <see cref="Dataset"/>, and which of its items is item
    /// <paramref name="index"/> (item i of a subset is its dataset's item <c>Indices[i]</c>).</summary>
    (object Dataset, int Index) Source(int index)
    {
        object source = Dataset;
        while (source is Subset<PennFudanItem> subset)
        {
            index = subset.Indices[index];
            source = subset.Dataset;
        }
        return (source, index);
    }

    /// <inheritdoc/>
    public Tensor[] this[int index]
    {
        get
        {
            DatasetExtensions.CheckIndex(index, Count, "PFSegmentation");
            using var scope = NewDisposeScope();
            // Resize first (PIL's nearest, as the seed's square_image), augment the smaller image, then pad: the
            // colour jitter and the flip commute with a nearest resize, and the blur's σ is scaled by the resize
            // factor so it blurs the same in image terms. Same result as the seed's order, ~4x less work.
            using var item = ReadResized(index, out int width);
            var image = item.Image.to(Device).to(ScalarType.Float32).div_(Max8Bit);   // [3 x h x w] in [0, 1]
            var mask = item.Mask.to(Device);                                           // [h x w] ids
            if (Training) (image, mask) = Augment(image, mask, (double)image.shape[^1] / width);
            image = PadCenter(image, ImageSize, 128f / 255);
            mask = PadCenter(mask, ImageSize, -1);
            image = PennFudan.Normalize(image);
            mask = mask.clamp_max(OneL);                                              // pedestrians 1, background 0, padding -1
            return [image.MoveToOuterDisposeScope(), mask.MoveToOuterDisposeScope()];
        }
    }

    /// <summary>Item <paramref name="index"/> resized so its longer side is <see cref="ImageSize"/>: through
    /// <see cref="IResizedItemSource"/> when the dataset, or the one under its subsets, is one, else the whole item resized.</summary>
    PennFudanItem ReadResized(int index, out int width)
    {
        if (Source(index) is (IResizedItemSource resizing, int at)) return resizing.ReadResized(at, ImageSize, out width);
        using var item = Dataset[index];
        width = (int)item.Image.shape[^1];
        return new PennFudanItem(item.Name, ResizeLonger(item.Image, ImageSize), ResizeLonger(item.Mask, ImageSize));
    }

    /// <summary>One colour-jitter draw: a random order of the four adjustments and their factors.</summary>
    sealed record Jitter(long[] Order, double Brightness, double Contrast, double Saturation, double Hue);

    sealed record Plan(Jitter? Jitter1, bool Flip, double? Blur1, bool JitterFirst, Jitter? Jitter2, double? Blur2);

    double Uniform(double low, double high)
    {
        using var u = rand(Array.Empty<long>(), ScalarType.Float32, generator: rng);
        return low + (high - low) * u.item<float>();
    }

    bool Coin() => Uniform(0, 1) < 0.5;

    Jitter DrawJitter()
    {
        using var order = randperm(4, generator: rng);
        return new Jitter(order.data<long>().ToArray(), Uniform(0.9, 1.1), Uniform(0.9, 1.1), Uniform(0.9, 1.1), Uniform(-0.1, 0.1));
    }

    Plan DrawPlan()
    {
        lock (rngLock)
        {
            var jitter1 = Coin() ? DrawJitter() : null;
            bool flip = Coin();
            double? blur1 = Coin() ? Uniform(0.1, 2.0) : null;
            if (!Coin()) return new Plan(jitter1, flip, blur1, true, null, null);
            bool jitterFirst = Coin();
            // RandomOrder draws the order, then each transform draws its own parameters when applied.
            Jitter j2; double b2;
            if (jitterFirst) { j2 = DrawJitter(); b2 = Uniform(0.1, 2.0); }
            else { b2 = Uniform(0.1, 2.0); j2 = DrawJitter(); }
            return new Plan(jitter1, flip, blur1, jitterFirst, j2, b2);
        }
    }

    (Tensor Image, Tensor Mask) Augment(Tensor image, Tensor mask, double scale)
    {
        var plan = DrawPlan();
        if (plan.Jitter1 is not null) image = ApplyJitter(image, plan.Jitter1);
        if (plan.Flip) { image = image.flip(-1); mask = mask.flip(-1); }
        if (plan.Blur1 is double s1) image = TensorTransforms.GaussianBlur(image, 5, s1 * scale);
        if (plan.Jitter2 is not null && plan.Blur2 is double s2)
        {
            if (plan.JitterFirst) image = TensorTransforms.GaussianBlur(ApplyJitter(image, plan.Jitter2), 5, s2 * scale);
            else image = ApplyJitter(TensorTransforms.GaussianBlur(image, 5, s2 * scale), plan.Jitter2);
        }
        return (image, mask);
    }

    static Tensor ApplyJitter(Tensor image, Jitter j)
    {
        foreach (long f in j.Order)
            image = f switch
            {
                0 => TensorTransforms.AdjustBrightness(image, j.Brightness),
                1 => TensorTransforms.AdjustContrast(image, j.Contrast),
                2 => TensorTransforms.AdjustSaturation(image, j.Saturation),
                _ => TensorTransforms.AdjustHue(image, j.Hue),
            };
        return image;
    }

    /// <summary>
    /// The seed's <c>square_image</c> (PIL <c>ImageOps.pad</c> with NEAREST) on a tensor <c>[.. x H x W]</c>:
    /// resize so the longer side is <paramref name="size"/> (PIL's nearest: source = floor((i + 0.5) · in / out)),
    /// centre it on a <paramref name="size"/>² canvas filled with <paramref name="fill"/>.
    /// </summary>
    public static Tensor SquareImage(Tensor image, int size, double fill)
    {
        using var resized = ResizeLonger(image, size);
        return PadCenter(resized, size, fill);
    }

    /// <summary>The resize step of <see cref="SquareImage"/>: longer side to <paramref name="size"/>, aspect kept
    /// (Python's round-half-even for the shorter side), PIL's nearest rule.</summary>
    public static Tensor ResizeLonger(Tensor image, int size)
    {
        long h = image.shape[^2], w = image.shape[^1];
        var (newH, newW) = ResizedSize(h, w, size);
        using var scope = NewDisposeScope();
        var resized = image.alias();
        // Rows first: whole rows are copied and the column gather then runs on the shorter image.
        if (newH != h) resized = resized.index_select(-2, tensor(NearestIndices(h, newH), device: image.device));
        if (newW != w) resized = resized.index_select(-1, tensor(NearestIndices(w, newW), device: image.device));
        return resized.MoveToOuterDisposeScope();
    }

    /// <summary>The size <see cref="ResizeLonger"/> gives an <paramref name="h"/> x <paramref name="w"/> image.</summary>
    internal static (long Height, long Width) ResizedSize(long h, long w, int size)
    {
        long newW = size, newH = size;
        if (w > h) newH = (long)Math.Round((double)h / w * size);
        else if (h > w) newW = (long)Math.Round((double)w / h * size);
        return (newH, newW);
    }

    /// <summary>PIL's nearest rule: output pixel i samples input pixel floor((i + 0.5) · input / output).</summary>
    internal static long[] NearestIndices(long input, long output)
    {
        var idx = new long[output];
        double scale = (double)input / output;
        for (long i = 0; i < output; i++) idx[i] = Math.Min(input - 1, (long)Math.Floor((i + 0.5) * scale));
        return idx;
    }

    /// <summary>The pad step of <see cref="SquareImage"/>: centre on a <paramref name="size"/>² canvas of <paramref name="fill"/>
    /// at offset <c>round((size - side) / 2)</c>, as PIL's <c>ImageOps.pad</c>.</summary>
    public static Tensor PadCenter(Tensor image, int size, double fill)
    {
        long h = image.shape[^2], w = image.shape[^1];
        if (h > size || w > size) throw new ArgumentException($"Image [{string.Join(" x ", image.shape)}] is larger than the {size}² canvas.", nameof(image));
        long y0 = (long)Math.Round((size - h) * 0.5), x0 = (long)Math.Round((size - w) * 0.5);
        var shape = image.shape.ToArray();
        shape[^2] = size; shape[^1] = size;
        using Scalar fillValue = fill;                                            // held: runs on DataLoader workers
        var canvas = full(shape, fillValue, image.dtype, image.device);
        canvas[TensorIndex.Ellipsis, TensorIndex.Slice(y0, y0 + h), TensorIndex.Slice(x0, x0 + w)] = image;
        return canvas;
    }

    /// <summary>The (augmented, when <see cref="Training"/>) image, denormalized, with the pedestrian mask overlaid;
    /// padding (-1) stays clear. A random item when <paramref name="index"/> is null; rerun for a new augmentation.</summary>
    public Plots.Figure Show(int? index = null)
    {
        int i = index ?? Random.Shared.Next(Count);
        var item = this[i];
        using var scope = NewDisposeScope();
        var image = PennFudan.Denormalize(item[0]).clamp_(Zero, One);
        item[0].Dispose();
        using var mask = item[1];
        return Plots.Charts.Mask(image, mask, classNames: ["background", "pedestrian"], title: $"{i}: {Name(i)}{(Training ? " (augmented)" : "")}");
    }

    /// <inheritdoc/>
    public override string ToString() => $"PFSegmentation(num_images={Count}, image_size={ImageSize}, training={Training})";
}

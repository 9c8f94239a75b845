using System.Runtime.InteropServices;
using TorchSharp;
using static DetSeg.Runtime.Scalars;
using static TorchSharp.torch;

namespace DetSeg.Data;

/// <summary>
/// The course's MNIST clutter: up to <see cref="MaxNumDigits"/> MNIST digits, each randomly rotated,
/// translated, scaled and sheared, painted in one random colour on a black <see cref="ImageSize"/>² canvas.
/// Item = [image <c>[3 x S x S]</c> float in [0, 1], mask <c>[S x S]</c> int64].
/// </summary>
/// <remarks>
/// <para>Instance masks hold <c>MaxNumDigits * label + k</c> for the k-th digit of that label and -1 for the
/// background; semantic masks hold the label 0..9 and -1. Course bugs fixed here: the seed ignored the
/// <c>instance</c> argument (always instance masks) and computed the semantic mask without assigning it.</para>
/// <para>Deterministic per index like the seed: a CPU generator seeded with the index draws, in the seed's
/// order, the number of digits, then per digit its MNIST index, angle ∈ [-30, 30), translation ∈ [-pad, pad)²,
/// scale 0.75 + 0.5u, shear ∈ [-20, 20) and, after warping, its colour. libtorch's generator is the same in
/// PyTorch and TorchSharp, so the same digits land in the same places (baseline.json facts mc_*).
/// The warping (torchvision's affine grid + nearest grid sampling, same matrix convention) and compositing run on
/// <see cref="Device"/>: as a batch of tensor ops on a GPU, pixel by pixel into the output tensors on the CPU, each
/// digit sampled only over the window of the canvas it can reach (<see cref="DigitWindow"/>), which gives the same
/// pixels as warping the whole canvas.</para>
/// </remarks>
public sealed class MNISTClutter : IDataset<Tensor[]>, IBatchedDataset, IDatasetWrapper
{
    readonly Lock deviceLock = new();
    Tensor? digitsOnDevice;
    (Tensor X, Tensor Y)? baseGrid;
    float[]? hostLine;

    /// <summary>Creates the dataset over the MNIST test split.</summary>
    /// <param name="instance">Instance masks (ids) when true, semantic masks (labels) when false.</param>
    /// <param name="imageSize">Canvas side S (≥ 30).</param>
    /// <param name="maxNumDigits">At most this many digits per image (1..100); also the id factor.</param>
    /// <param name="mnist">The digits (default: <c>new MNIST()</c>, the test split, downloaded if missing).</param>
    /// <param name="device">Where images are rendered (default <see cref="Runtime.Device.Default"/>).</param>
    /// <param name="numImages">How many distinct images (default: one per MNIST digit, as in the seed). Image i is
    /// seeded with i, so the first 10,000 are the seed's whatever this is; more gives training fresh compositions
    /// of the same digits (see <c>DataLoader</c>'s <c>numSamples</c>).</param>
    /// <exception cref="ArgumentException">A size is out of range.</exception>
    public MNISTClutter(bool instance = true, int imageSize = 128, int maxNumDigits = 10, MNIST? mnist = null, torch.Device? device = null, int? numImages = null)
    {
        if (numImages is < 1) throw new ArgumentException($"numImages must be ≥ 1, got {numImages}.", nameof(numImages));
        if (imageSize < 30)
            throw new ArgumentException($"imageSize must be ≥ 30 (an MNIST digit is 28 wide and the seed moves it by randint(-pad, pad), pad = (size - 28) // 2 ≥ 1), got {imageSize}.", nameof(imageSize));
        if (maxNumDigits is < 1 or > 100) throw new ArgumentException($"maxNumDigits must be in 1..100, got {maxNumDigits}.", nameof(maxNumDigits));
        Instance = instance;
        ImageSize = imageSize;
        MaxNumDigits = maxNumDigits;
        Mnist = mnist ?? new MNIST();
        Device = device ?? Runtime.Device.Default;
        Count = numImages ?? Mnist.Count;
    }

    /// <summary>Instance (true) or semantic (false) masks.</summary>
    public bool Instance { get; }
    /// <summary>The canvas side.</summary>
    public int ImageSize { get; }
    /// <summary>The most digits per image, and the factor of instance ids.</summary>
    public int MaxNumDigits { get; }
    /// <summary>The digits drawn from.</summary>
    public MNIST Mnist { get; }
    /// <summary>Where images are rendered.</summary>
    public torch.Device Device { get; }
    /// <summary>The number of distinct images: one per MNIST digit as in the seed, unless the constructor said otherwise.</summary>
    public int Count { get; }
    object IDatasetWrapper.Inner => Mnist;

    /// <summary>The padding on each side of a 28-pixel digit before warping (the seed's <c>(S - 28) // 2</c>).</summary>
    public int Pad => (ImageSize - 28) / 2;

    /// <summary>One digit's random draws, in the seed's order.</summary>
    /// <param name="MnistIndex">Which MNIST digit.</param>
    /// <param name="Label">Its label.</param>
    /// <param name="Angle">Rotation in degrees.</param>
    /// <param name="TranslateX">Horizontal shift in pixels.</param>
    /// <param name="TranslateY">Vertical shift in pixels.</param>
    /// <param name="Scale">Scale factor.</param>
    /// <param name="Shear">Shear in degrees (x axis).</param>
    /// <param name="Color">RGB colour in [0, 1).</param>
    /// <param name="Id">Its instance id, <c>MaxNumDigits * label + count[label]</c>.</param>
    public readonly record struct DigitDraw(int MnistIndex, int Label, int Angle, int TranslateX, int TranslateY, double Scale, int Shear, float[] Color, long Id);

    /// <summary>The digits of image <paramref name="index"/>, drawn from a generator seeded with the index.</summary>
    public DigitDraw[] Layout(int index)
    {
        DatasetExtensions.CheckIndex(index, Count, "MNISTClutter");
        var cpu = new torch.Device(DeviceType.CPU);
        using var rng = new Generator((ulong)index, cpu);
        long Randint(long low, long high)
        {
            using var t = randint(low, high, Array.Empty<long>(), ScalarType.Int64, cpu, generator: rng);
            return t.item<long>();
        }
        int numDigits = (int)Randint(0, MaxNumDigits) + 1;
        var count = new int[10];
        var draws = new DigitDraw[numDigits];
        for (int k = 0; k < numDigits; k++)
        {
            int i = (int)Randint(0, Mnist.Count);
            int label = Mnist.Label(i);
            int angle = (int)Randint(-30, 30);
            long[] translate;
            using (var t = randint(-Pad, Pad, [2], ScalarType.Int64, cpu, generator: rng)) translate = t.data<long>().ToArray();
            double scale;
            using (var u = rand(Array.Empty<long>(), ScalarType.Float32, cpu, generator: rng)) scale = 0.75 + 0.5 * u.item<float>();
            int shear = (int)Randint(-20, 20);
            float[] color;
            using (var c = rand([3, 1], ScalarType.Float32, cpu, generator: rng)) color = c.data<float>().ToArray();
            draws[k] = new DigitDraw(i, label, angle, (int)translate[0], (int)translate[1], scale, shear, color, MaxNumDigits * label + count[label]);
            count[label]++;
        }
        return draws;
    }

    /// <summary>torchvision's <c>_get_inverse_affine_matrix</c> with centre (0, 0) as <c>TF.affine</c> uses for
    /// tensors: output pixel → input pixel, in pixels relative to the image centre, row-major 2 x 3.</summary>
    public static double[] InverseAffineMatrix(double angle, double translateX, double translateY, double scale, double shearX, double shearY = 0)
    {
        double rot = angle * (Math.PI / 180), sx = shearX * (Math.PI / 180), sy = shearY * (Math.PI / 180);
        double a = Math.Cos(rot - sy) / Math.Cos(sy);
        double b = -Math.Cos(rot - sy) * Math.Tan(sx) / Math.Cos(sy) - Math.Sin(rot);
        double c = Math.Sin(rot - sy) / Math.Cos(sy);
        double d = -Math.Sin(rot - sy) * Math.Tan(sx) / Math.Cos(sy) + Math.Cos(rot);
        double[] m = [d / scale, -b / scale, 0.0, -c / scale, a / scale, 0.0];
        m[2] += m[0] * -translateX + m[1] * -translateY;
        m[5] += m[3] * -translateX + m[4] * -translateY;
        return m;
    }

    /// <inheritdoc/>
    public Tensor[] this[int index] => GetBatch([index]).Select(t => { var item = t[0]; t.Dispose(); return item; }).ToArray();

    /// <inheritdoc/>
    public Tensor[] GetBatch(IReadOnlyList<int> indices)
    {
        var (image, mask, _) = Render(indices);
        return [image, mask];
    }

    /// <summary>Renders images with their instance/semantic masks and, per image, the digit draws.</summary>
    internal (Tensor Image, Tensor Mask, DigitDraw[][] Draws) Render(IReadOnlyList<int> indices)
    {
        if (indices.Count == 0) throw new ArgumentException("No indices to render.", nameof(indices));
        return Device.type == DeviceType.CPU ? RenderOnHost(indices) : RenderWithTensors(indices);
    }

    /// <summary>
    /// The CPU renderer: the same sampling as <see cref="RenderWithTensors"/>, pixel by pixel in the window of each
    /// digit, written straight into the output tensors. On the CPU the ~40 small tensor ops of a batched render
    /// cost more than the arithmetic they do.
    /// </summary>
    /// <remarks>Each step rounds as libtorch does in the tensor path, in float32 in the same order: theta / (S/2),
    /// grid = (x·t0 + y·t1) + t2, then grid_sample's unnormalisation <c>(g + 1)·(S/2) - 0.5</c> and round half to
    /// even. Tests hold both renderers to warping the whole canvas with libtorch's <c>grid_sample</c>.</remarks>
    internal (Tensor Image, Tensor Mask, DigitDraw[][] Draws) RenderOnHost(IReadOnlyList<int> indices)
    {
        var draws = indices.Select(Layout).ToArray();
        int B = indices.Count, S = ImageSize, pad = Pad, plane = S * S;
        var line = HostLine();
        var cpu = new torch.Device(DeviceType.CPU);
        using var scope = NewDisposeScope();
        var image = empty([B, 3, S, S], ScalarType.Float32, cpu);                     // [B x 3 x S x S]
        var mask = empty([B, S, S], ScalarType.Int64, cpu);                            // [B x S x S]
        var pixels = MemoryMarshal.Cast<byte, float>(image.bytes);
        var ids = MemoryMarshal.Cast<byte, long>(mask.bytes);
        pixels.Clear();
        ids.Fill(-1);
        ReadOnlySpan<byte> mnist = Mnist.Images.bytes;                                 // [N x 28 x 28] uint8, host memory
        float half = 0.5f * S, unnormalize = S / 2f;
        Span<float> theta = stackalloc float[6];
        for (int b = 0; b < B; b++)
            foreach (var d in draws[b])
            {
                var m = InverseAffineMatrix(d.Angle, d.TranslateX, d.TranslateY, d.Scale, d.Shear);
                for (int j = 0; j < 6; j++) theta[j] = (float)m[j];
                float xa = theta[0] / half, ya = theta[1] / half, ta = theta[2] / half;   // grid x = x·xa + y·ya + ta
                float xb = theta[3] / half, yb = theta[4] / half, tb = theta[5] / half;   // grid y = x·xb + y·yb + tb
                var (x0, y0, x1, y1) = DigitWindow(theta, S, pad);
                var digit = mnist.Slice(d.MnistIndex * 784, 784);
                long id = Instance ? d.Id : d.Label;
                float red = d.Color[0], green = d.Color[1], blue = d.Color[2];
                int imageAt = b * 3 * plane, maskAt = b * plane;
                for (int i = y0; i <= y1; i++)
                {
                    float y = line[i], yA = y * ya, yB = y * yb;
                    for (int j = x0; j <= x1; j++)
                    {
                        float x = line[j];
                        float gx = x * xa + yA + ta, gy = x * xb + yB + tb;
                        // nearest input pixel of the padded digit; the padding (and everything off the canvas) is 0
                        int u = (int)MathF.Round((gx + 1f) * unnormalize - 0.5f) - pad;
                        int v = (int)MathF.Round((gy + 1f) * unnormalize - 0.5f) - pad;
                        // intensity p / 255f > 0.5f exactly when p ≥ 128
                        if ((uint)u >= 28 || (uint)v >= 28 || digit[v * 28 + u] < 128) continue;
                        int at = i * S + j;
                        pixels[imageAt + at] = red;
                        pixels[imageAt + plane + at] = green;
                        pixels[imageAt + 2 * plane + at] = blue;
                        ids[maskAt + at] = id;
                    }
                }
            }
        return (image.MoveToOuterDisposeScope(), mask.MoveToOuterDisposeScope(), draws);
    }

    /// <summary>torchvision's base grid coordinates: x = linspace(-S/2 + 0.5, S/2 - 0.5, S) per column, y likewise
    /// per row (the third coordinate is 1).</summary>
    static Tensor BaseLine(int S, torch.Device device) => linspace(-S * 0.5 + 0.5, S * 0.5 + 0.5 - 1, S, ScalarType.Float32, device);

    float[] HostLine()
    {
        lock (deviceLock)
        {
            if (hostLine is null)
            {
                using var xs = BaseLine(ImageSize, new torch.Device(DeviceType.CPU));
                hostLine = xs.data<float>().ToArray();
            }
            return hostLine;
        }
    }

    /// <summary>
    /// The batched tensor renderer, for GPUs: the scalar draws on the host, warping (torchvision's affine grid +
    /// nearest grid sampling) and compositing as one set of tensor ops on <see cref="Device"/>.
    /// </summary>
    internal (Tensor Image, Tensor Mask, DigitDraw[][] Draws) RenderWithTensors(IReadOnlyList<int> indices)
    {
        if (indices.Count == 0) throw new ArgumentException("No indices to render.", nameof(indices));
        var draws = indices.Select(Layout).ToArray();
        int B = indices.Count, S = ImageSize, K = draws.Max(d => d.Length), D = draws.Sum(d => d.Length);
        using var scope = NewDisposeScope();
        var (digitsAll, grid0) = DeviceTensors();

        // Per digit: which MNIST image, the inverse affine matrix, colour, id; and its slot (b, k).
        var mnistIdx = new long[D];
        var theta = new float[D * 6];
        var slot = new long[D];
        var colors = new float[B * K * 3];
        var ids = new long[B * K];
        int n = 0;
        for (int b = 0; b < B; b++)
            for (int k = 0; k < draws[b].Length; k++, n++)
            {
                var dd = draws[b][k];
                mnistIdx[n] = dd.MnistIndex;
                var m = InverseAffineMatrix(dd.Angle, dd.TranslateX, dd.TranslateY, dd.Scale, dd.Shear);
                for (int j = 0; j < 6; j++) theta[n * 6 + j] = (float)m[j];   // torch.tensor(matrix, dtype=float32)
                slot[n] = b * K + k;
                Array.Copy(dd.Color, 0, colors, (b * K + k) * 3, 3);
                ids[b * K + k] = Instance ? dd.Id : dd.Label;
            }

        // Pad each digit to the canvas (the seed's TF.pad(digit, pad); odd S - 28 pads one more on the far side
        // so that the canvas is S wide — the seed would crash there).
        int pad = Pad, far = S - 28 - pad;
        var digits = digitsAll.index_select(0, tensor(mnistIdx, device: Device))     // [D x 28 x 28] uint8
            .to(ScalarType.Float32).div_(Max8Bit).unsqueeze(1);                         // [D x 1 x 28 x 28]
        digits = nn.functional.pad(digits, [pad, far, pad, far]);                   // [D x 1 x S x S]

        // Only a window around each digit is sampled: every canvas pixel outside the image of the digit's 28x28 square
        // maps outside it and samples 0, so the windows give the same pixels as warping the whole canvas per digit
        // (the seed's way) at a fraction of the work. One window size per chunk keeps the sampling one batched call.
        var windows = new (int X0, int Y0, int X1, int Y1)[D];
        for (int d = 0; d < D; d++) windows[d] = DigitWindow(theta.AsSpan(d * 6, 6), S, pad);
        int wW = windows.Max(w => w.X1 - w.X0 + 1), wH = windows.Max(w => w.Y1 - w.Y0 + 1);
        var cols = new long[D * wW];
        var rows = new long[D * wH];
        var flat = new long[D * wH * wW];                  // each window pixel's place in rank [(B*K) x S x S]
        for (int d = 0; d < D; d++)
        {
            int ox = Math.Min(windows[d].X0, S - wW), oy = Math.Min(windows[d].Y0, S - wH);
            for (int j = 0; j < wW; j++) cols[d * wW + j] = ox + j;
            for (int i = 0; i < wH; i++) rows[d * wH + i] = oy + i;
            long basePos = slot[d] * (long)S * S;
            for (int i = 0; i < wH; i++)
                for (int j = 0; j < wW; j++)
                    flat[(d * wH + i) * wW + j] = basePos + (oy + i) * (long)S + ox + j;
        }

        // torchvision's _gen_affine_grid: pixel-centred base grid times theta, rescaled to [-1, 1].
        var thetaT = tensor(theta, [D, 2, 3], device: Device);
        var rescaled = thetaT.transpose(1, 2).div(tensor(new float[] { 0.5f * S, 0.5f * S }, device: Device));  // [D x 3 x 2]
        // grid = base @ rescaled, written out per coordinate: (x·t0 + y·t1) + t2. A batched bmm with an inner
        // size of 3 is ~20x slower on the CPU; the rounding is the same sum of three products.
        var (xs, ys) = grid0;                                                                                   // [S], [S]
        var t = rescaled.unsqueeze(1).unsqueeze(1);                                                            // [D x 1 x 1 x 3 x 2]
        var xg = xs.index_select(0, tensor(cols, device: Device)).view(D, 1, wW, 1);                            // window columns
        var yg = ys.index_select(0, tensor(rows, device: Device)).view(D, wH, 1, 1);                            // window rows
        var grid = xg.mul(t[.., .., .., 0, ..]).add(yg.mul(t[.., .., .., 1, ..]), OneL).add_(t[.., .., .., 2, ..], OneL); // [D x wH x wW x 2]
        var warped = nn.functional.grid_sample(digits, grid, GridSampleMode.Nearest, GridSamplePaddingMode.Zeros, align_corners: false);
        var valid = warped.squeeze(1).gt(OneHalf);                                                                   // [D x wH x wW]

        // Composite in draw order: the last digit covering a pixel wins, like the seed's sequential painting.
        var rank = zeros(B * K, S, S, ScalarType.Byte, Device);                                                 // [(B*K) x S x S]
        var order = tensor(slot, device: Device);
        using var slots = K.ToScalar();
        var kPlusOne = order.remainder(slots).add(OneL, OneL).to(ScalarType.Byte).view(D, 1, 1);
        // Windows never overlap within a slot (one digit each): every place is written once.
        rank.view(-1).index_copy_(0, tensor(flat, device: Device), valid.to(ScalarType.Byte).mul_(kPlusOne).view(-1));
        var top = rank.view(B, K, S, S).amax([1]).to(ScalarType.Int64);                                        // [B x S x S], 0 = background
        var winner = top.sub(OneL).clamp_min(ZeroL).view(B, S * S);                                                    // slot per pixel
        var painted = top.gt(ZeroL);                                                                                 // [B x S x S]
        var idT = tensor(ids, [B, K], device: Device);
        var mask = idT.gather(1, winner).view(B, S, S).masked_fill(painted.logical_not(), MinusOneL);                  // [B x S x S]
        var colT = tensor(colors, [B, K, 3], device: Device);
        var image = colT.gather(1, winner.unsqueeze(-1).expand(B, S * S, 3))                                    // [B x S*S x 3]
            .permute(0, 2, 1).reshape(B, 3, S, S).mul(painted.unsqueeze(1));                                   // [B x 3 x S x S]
        // The permute leaves the batch channels-last (NHWC strides); libtorch 2.10's oneDNN convolution then killed the
        // process with SIGFPE on this project's Zen 5 CPU (YOLOv3 on GetBatch's images). Models get plain NCHW.
        image = image.contiguous();
        return (image.MoveToOuterDisposeScope(), mask.MoveToOuterDisposeScope(), draws);
    }

    /// <summary>
    /// The canvas pixels (inclusive, clamped to the canvas) where a digit warped by <paramref name="theta"/> can land:
    /// the forward image of the input square whose nearest samples fall on the digit's 28x28 pixels, plus two pixels
    /// for float32 rounding.
    /// </summary>
    internal static (int X0, int Y0, int X1, int Y1) DigitWindow(ReadOnlySpan<float> theta, int S, int pad)
    {
        // theta maps an output pixel (relative to the centre) to an input point: in = A·out + t. Nearest sampling
        // hits the digit for input pixel coordinates in [pad - 0.5, pad + 27.5], relative [pad - S/2, pad + 28 - S/2].
        double a = theta[0], b = theta[1], tx = theta[2], c = theta[3], d = theta[4], ty = theta[5];
        double det = a * d - b * c;
        double lo = pad - 0.5 * S, hi = lo + 28;
        double xMin = double.MaxValue, xMax = double.MinValue, yMin = double.MaxValue, yMax = double.MinValue;
        foreach (var (u, v) in new[] { (lo, lo), (hi, lo), (lo, hi), (hi, hi) })
        {
            double du = u - tx, dv = v - ty;
            double x = (d * du - b * dv) / det, y = (-c * du + a * dv) / det;        // A⁻¹ (in - t)
            xMin = Math.Min(xMin, x); xMax = Math.Max(xMax, x); yMin = Math.Min(yMin, y); yMax = Math.Max(yMax, y);
        }
        double toPixel = 0.5 * S - 0.5;                                                 // relative → pixel index
        int Clamp(double v) => (int)Math.Clamp(v, 0, S - 1);
        return (Clamp(Math.Floor(xMin + toPixel) - 2), Clamp(Math.Floor(yMin + toPixel) - 2),
                Clamp(Math.Ceiling(xMax + toPixel) + 2), Clamp(Math.Ceiling(yMax + toPixel) + 2));
    }

    (Tensor Digits, (Tensor X, Tensor Y) BaseGrid) DeviceTensors()
    {
        lock (deviceLock)
        {
            if (digitsOnDevice is null || baseGrid is null)
            {
                digitsOnDevice = Mnist.Images.to(Device).DetachFromDisposeScope();
                int S = ImageSize;
                var xs = BaseLine(S, Device);
                var ys = BaseLine(S, Device);
                baseGrid = (xs.DetachFromDisposeScope(), ys.DetachFromDisposeScope());
            }
            return (digitsOnDevice, baseGrid.Value);
        }
    }

    /// <summary>The digits in image <paramref name="index"/>: distinct labels present in its mask, ascending (the seed's title).</summary>
    public int[] Digits(int index)
    {
        var item = this[index];
        using var image = item[0];
        using var mask = item[1];
        using var perDigit = MaxNumDigits.ToScalar();
        using var labels = Instance ? mask.masked_select(mask.ge(ZeroL)).div(perDigit, RoundingMode.floor) : mask.masked_select(mask.ge(ZeroL));
        var (u, _, _) = labels.unique();
        using (u) return u.cpu().data<long>().Select(v => (int)v).ToArray();
    }

    /// <summary>The image titled with its digits (the course's <c>imshow</c>); a random item when <paramref name="index"/> is null.</summary>
    public Plots.Figure Show(int? index = null)
    {
        int i = index ?? Random.Shared.Next(Count);
        var item = this[i];
        using var image = item[0];
        using var mask = item[1];
        return Plots.Charts.Image(image, title: $"{i}: has these digits [{string.Join(", ", Digits(i))}]");
    }

    /// <inheritdoc/>
    public override string ToString() => $"MNISTClutter(num_images={Count}, instance={Instance}, image_size={ImageSize}, max_num_digits={MaxNumDigits})";
}

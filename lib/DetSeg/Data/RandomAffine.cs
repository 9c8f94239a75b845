using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Data;

/// <summary>
/// torchvision's <c>transforms.RandomAffine(degrees, translate, scale)</c> for a whole batch at once, on the batch's
/// device: every image gets its own rotation, shift and zoom, resampled bilinearly with zeros outside. Meant for
/// images whose background is 0 — e.g. normalized-to-[0, 1] MNIST digits — where a shifted-in border stays background.
/// </summary>
/// <remarks>
/// One <c>affine_grid</c> + <c>grid_sample</c> per batch (a few hundred microseconds for 64 digits on a CPU core)
/// instead of one transform per item on loader threads. Random draws come from <see cref="Generator"/>, or from
/// torch's default generator when it is null (what the trainer's checkpoints save and a resume restores).
/// </remarks>
public sealed class RandomAffine
{
    /// <summary>A transform drawing, per image, a rotation in ±<paramref name="degrees"/>, a shift in ±<paramref name="translate"/> of the side, a zoom in [1 − <paramref name="scale"/>, 1 + <paramref name="scale"/>].</summary>
    /// <param name="degrees">Largest rotation, in degrees (≥ 0).</param>
    /// <param name="translate">Largest shift as a fraction of the image's side, per axis (in [0, 1)).</param>
    /// <param name="scale">Largest relative zoom in or out (in [0, 1)).</param>
    /// <param name="generator">Where random numbers come from (null: torch's default generator). A CPU generator.</param>
    /// <exception cref="ArgumentOutOfRangeException">A range outside the ones above; the message names it.</exception>
    public RandomAffine(double degrees, double translate, double scale = 0, Generator? generator = null)
    {
        if (!(degrees >= 0 && degrees <= 180)) throw new ArgumentOutOfRangeException(nameof(degrees), degrees, "degrees must lie in [0, 180].");
        if (!(translate >= 0 && translate < 1)) throw new ArgumentOutOfRangeException(nameof(translate), translate, "translate must lie in [0, 1).");
        if (!(scale >= 0 && scale < 1)) throw new ArgumentOutOfRangeException(nameof(scale), scale, "scale must lie in [0, 1).");
        Degrees = degrees;
        Translate = translate;
        Scale = scale;
        Generator = generator;
        // Held for the transform's life: Matrices runs every training step (no temporary Scalars, Runtime/Scalars).
        angleLow = (-degrees * Math.PI / 180).ToScalar(); angleSpan = (2 * degrees * Math.PI / 180).ToScalar();
        zoomLow = (1 - scale).ToScalar(); zoomSpan = (2 * scale).ToScalar();
        shiftLow = (-2 * translate).ToScalar(); shiftSpan = (4 * translate).ToScalar();
    }

    readonly Scalar angleLow, angleSpan, zoomLow, zoomSpan, shiftLow, shiftSpan;

    /// <summary>Largest rotation, in degrees.</summary>
    public double Degrees { get; }
    /// <summary>Largest shift, as a fraction of the side.</summary>
    public double Translate { get; }
    /// <summary>Largest relative zoom.</summary>
    public double Scale { get; }
    /// <summary>The generator drawn from (null: torch's default one).</summary>
    public Generator? Generator { get; }

    /// <summary>
    /// The per-image affine matrices, <c>[B x 2 x 3]</c> float32 on <paramref name="device"/>, in <c>affine_grid</c>'s
    /// convention: they map output coordinates in [−1, 1] to input coordinates, so a shift of +t moves the content by −t/2 of the side.
    /// </summary>
    public Tensor Matrices(long batch, Device device)
    {
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch must be ≥ 1.");
        using var scope = NewDisposeScope();
        // Drawn on the CPU in a fixed order (angle, zoom, x, y), so a seed gives the same matrices on every device.
        var angle = Uniform(batch, angleLow, angleSpan);
        var zoom = Uniform(batch, zoomLow, zoomSpan);
        var tx = Uniform(batch, shiftLow, shiftSpan);             // normalized coordinates span 2 per side
        var ty = Uniform(batch, shiftLow, shiftSpan);
        // Output pixel p samples the input at A·p + t; the inverse zoom makes the content grow when zoom > 1.
        var cos = angle.cos().div_(zoom);
        var sin = angle.sin().div_(zoom);
        var theta = stack([cos, sin.neg(), tx, sin, cos, ty], 1).view(batch, 2, 3);
        return theta.to(ScalarType.Float32).to(device).MoveToOuterDisposeScope();
    }

    Tensor Uniform(long n, Scalar low, Scalar span) =>
        rand(new[] { n }, dtype: ScalarType.Float64, generator: Generator).mul_(span).add_(low, Runtime.Scalars.OneL);

    /// <summary>[B x C x H x W] float to [B x C x H x W]: each image rotated, shifted and zoomed by its own draw.</summary>
    /// <exception cref="ArgumentException">An input that is not a 4-D floating-point batch; the message names its shape and type.</exception>
    public Tensor Apply(Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.dim() != 4 || !images.is_floating_point())
            throw new ArgumentException($"RandomAffine expects a floating-point batch [B x C x H x W], got [{string.Join(" x ", images.shape)}] {images.dtype}.", nameof(images));
        using var scope = NewDisposeScope();
        var theta = Matrices(images.shape[0], images.device).to(images.dtype);
        var grid = nn.functional.affine_grid(theta, images.shape, align_corners: false);   // [B x H x W x 2]
        var output = nn.functional.grid_sample(images, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Zeros, align_corners: false);
        return output.MoveToOuterDisposeScope();
    }
}

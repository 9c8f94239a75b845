using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Runtime;

/// <summary>
/// <c>nn.LeakyReLU</c> with its slope held as one <see cref="Scalar"/> for the module's life.
/// </summary>
/// <remarks>
/// TorchSharp 0.107's <c>nn.LeakyReLU</c> turns its <c>double</c> slope into a temporary Scalar on every call,
/// which a GC started by another thread (DataLoader workers, the notebook kernel's own threads) can finalize
/// while libtorch still reads it: notebook 05's YOLOv3 training died once in a cpu-profile run with
/// "Expected false to be true" from <c>c10::Scalar::toFloat</c> inside <c>LeakyReLU.forward</c> on the training
/// thread (see <c>TORCHSHARP-NOTES.md</c>). Same maths, no parameters, so state_dict keys do not change.
/// </remarks>
public sealed class LeakyReLU : nn.Module<Tensor, Tensor>
{
    private readonly Scalar slope;

    /// <summary>The slope for negative inputs.</summary>
    public double NegativeSlope { get; }

    /// <summary>Whether the input is overwritten.</summary>
    public bool InPlace { get; }

    /// <summary>As <c>nn.LeakyReLU(negativeSlope, inplace)</c>.</summary>
    public LeakyReLU(double negativeSlope = 0.01, bool inplace = false) : base(nameof(LeakyReLU))
    {
        if (!double.IsFinite(negativeSlope))
            throw new ArgumentOutOfRangeException(nameof(negativeSlope), negativeSlope, "The slope must be finite.");
        NegativeSlope = negativeSlope;
        InPlace = inplace;
        slope = negativeSlope.ToScalar();
    }

    /// <summary>[*] to [*]: x where x ≥ 0, slope·x elsewhere.</summary>
    // alias(): an in-place result is a new handle on the same storage, as TorchSharp's own module returns, so a
    // dispose scope that frees the output never frees the caller's input tensor object.
    public override Tensor forward(Tensor x) => InPlace ? x.leaky_relu_(slope).alias() : x.leaky_relu(slope);

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) slope.Dispose();
        base.Dispose(disposing);
    }
}

using TorchSharp;

namespace DetSeg.Runtime;

/// <summary>
/// <see cref="Scalar"/>s held for the whole process, for code that runs on worker threads.
/// </summary>
/// <remarks>
/// TorchSharp 0.107 passes a <see cref="Scalar"/>'s native handle to libtorch and keeps no reference to the
/// object during the call, so a temporary one — every implicit C# number → Scalar conversion (<c>x.mul(0.5)</c>,
/// <c>clamp(0, 1)</c>) and the hidden <c>alpha = 1</c> of <c>add(Tensor)</c>, <c>a + b</c>
/// and <c>add(double)</c> — can be finalized, freeing the native value, while libtorch still reads it, when
/// another thread triggers a GC ("Unknown scalar type.", "Expected false to be true"). Per-item and per-batch
/// code therefore passes these cached Scalars, or a local held by <c>using var</c> until the method returns, and
/// the explicit-alpha overloads (<c>add(t, Scalars.One)</c>). See <c>TORCHSHARP-NOTES.md</c>.
/// </remarks>
public static class Scalars
{
    /// <summary>0.0.</summary>
    public static readonly Scalar Zero = 0.0.ToScalar();
    /// <summary>1.0.</summary>
    public static readonly Scalar One = 1.0.ToScalar();
    /// <summary>0.5.</summary>
    public static readonly Scalar OneHalf = 0.5.ToScalar();
    /// <summary>2.0.</summary>
    public static readonly Scalar Two = 2.0.ToScalar();
    /// <summary>1e-12, the floor of a ratio's denominator (an IoU's union).</summary>
    public static readonly Scalar Tiny = 1e-12.ToScalar();
    /// <summary>255.0, the largest 8-bit intensity.</summary>
    public static readonly Scalar Max8Bit = 255.0.ToScalar();
    /// <summary>-1.0.</summary>
    public static readonly Scalar MinusOne = (-1.0).ToScalar();
    /// <summary>Integer 0: keeps integer tensors integer where a C# <c>0</c> was written.</summary>
    public static readonly Scalar ZeroL = 0L.ToScalar();
    /// <summary>Integer 1, also the alpha of a plain <c>add(Tensor)</c>.</summary>
    public static readonly Scalar OneL = 1L.ToScalar();
    /// <summary>Integer 2.</summary>
    public static readonly Scalar TwoL = 2L.ToScalar();
    /// <summary>Integer -1 (DetSeg's padding label).</summary>
    public static readonly Scalar MinusOneL = (-1L).ToScalar();
}

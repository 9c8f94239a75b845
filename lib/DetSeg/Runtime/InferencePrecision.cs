using static TorchSharp.torch;

namespace DetSeg.Runtime;

/// <summary>
/// The number format a model's weights and activations use at inference. <see cref="BFloat16"/> halves memory
/// traffic and runs on AVX512_BF16 / AMX CPUs and CUDA GPUs; inputs are cast to it on the way in and outputs back to
/// float32 on the way out, so NMS, argmax and metrics always see float32.
/// </summary>
public enum InferencePrecision
{
    /// <summary>IEEE float32 (the default; what training uses).</summary>
    Float32,
    /// <summary>bfloat16: float32's exponent range with an 8-bit significand (~2-3 significant digits).</summary>
    BFloat16,
}

/// <summary>Parsing and conversions of <see cref="InferencePrecision"/>.</summary>
public static class InferencePrecisions
{
    /// <summary>The tensor element type of <paramref name="precision"/>.</summary>
    public static ScalarType ToScalarType(this InferencePrecision precision) => precision switch
    {
        InferencePrecision.Float32 => ScalarType.Float32,
        InferencePrecision.BFloat16 => ScalarType.BFloat16,
        _ => throw new ArgumentOutOfRangeException(nameof(precision), precision, "unknown inference precision"),
    };

    /// <summary>Parses <c>fp32</c>/<c>float32</c> or <c>bf16</c>/<c>bfloat16</c> (case-insensitive), as the CLI takes them.</summary>
    /// <exception cref="FormatException">Naming the accepted values.</exception>
    public static InferencePrecision Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "fp32" or "float32" or "float" => InferencePrecision.Float32,
        "bf16" or "bfloat16" => InferencePrecision.BFloat16,
        _ => throw new FormatException($"precision '{text}' is not one of fp32, bf16."),
    };
}

using System.Runtime.CompilerServices;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Runtime;

/// <summary>
/// Keeps 2-D convolutions whose channel counts are not whole oneDNN channel blocks away from oneDNN, whose
/// kernels for them compute wrong values on some CPUs (see <c>lib/DetSeg/Runtime/TORCHSHARP-NOTES.md</c>).
/// </summary>
/// <remarks>
/// <para>
/// libtorch 2.10 runs every float32 CPU convolution with a batch above one through oneDNN. On this project's
/// AMD Zen 5 build machine its kernels return, in some runs and not others, NaN or wrong input gradients
/// whenever <c>out_channels</c> is not a multiple of 16, and wrong outputs when <c>in_channels</c> is above 16
/// and not a multiple of 16; the channels-last (NHWC) kernels are wrong too (e.g. a 1x1 conv 32 → 45).
/// Multiples of 16 — the wide layers that cost the time — were exact in every measurement.
/// </para>
/// <para>
/// A guarded convolution therefore runs in float64 (libtorch never sends float64 to oneDNN; its im2col + GEMM
/// path is the reference) and returns float32; autograd carries the gradients back through the casts, so the
/// module's float32 weights train as before. The narrow layers are cheap, so this costs little; everything
/// else (multiples of 16, CUDA, float64 inputs) is untouched. It is applied on every CPU: it is exact
/// everywhere, and no cheap probe can rule the defect out (it is intermittent).
/// </para>
/// </remarks>
public static class ConvGuard
{
    /// <summary>
    /// Channel counts (per group) that fill oneDNN's blocks exactly on every instruction set it has (blocks
    /// of 16 on AVX-512, 8 on AVX2); anything else goes through the guard.
    /// </summary>
    public const long SafeChannelMultiple = 16;

    static readonly ConditionalWeakTable<Convolution, object> Guarded = new();
    static readonly object Marker = new();

    // The input a pre-hook took from its module, for that module's post-hook on the same thread. One slot per
    // module, overwritten by the next call, so a forward that throws leaves nothing that a later call could pick up.
    [ThreadStatic] static Dictionary<Convolution, Tensor>? taken;

    /// <summary>True when a convolution with these channel counts needs the guard.</summary>
    public static bool NeedsGuard(long inChannels, long outChannels, long groups = 1)
    {
        if (groups < 1) throw new ArgumentOutOfRangeException(nameof(groups), groups, "groups must be ≥ 1.");
        return (inChannels / groups) % SafeChannelMultiple != 0 || (outChannels / groups) % SafeChannelMultiple != 0;
    }

    /// <summary>
    /// Guards every 2-D convolution and transposed convolution in <paramref name="module"/> (itself included)
    /// whose channel counts <see cref="NeedsGuard"/>. Idempotent; returns <paramref name="module"/>.
    /// </summary>
    public static T Protect<T>(T module) where T : nn.Module
    {
        ArgumentNullException.ThrowIfNull(module);
        if (module is Convolution self) Guard(self);
        foreach (var m in module.modules())
            if (m is Convolution conv) Guard(conv);
        return module;
    }

    /// <summary>True when <paramref name="conv"/> carries the guard's hooks.</summary>
    public static bool IsProtected(Convolution conv) => Guarded.TryGetValue(conv, out _);

    static void Guard(Convolution conv)
    {
        if (conv.kernel_size.Length != 2 || !NeedsGuard(conv.in_channels, conv.out_channels, conv.groups)) return;
        if (conv.padding_mode != PaddingModes.Zeros || conv.padding_type is not null) return; // not used in DetSeg
        lock (Guarded)
        {
            if (Guarded.TryGetValue(conv, out _)) return;
            Guarded.Add(conv, Marker);
        }
        // The module's own forward gets an empty batch (no oneDNN work, nothing wrong to compute); the
        // post-hook computes the real output from the input it took. Inputs the module would reject pass
        // unchanged, so its own error names their shape.
        conv.register_forward_pre_hook((_, x) =>
        {
            if (!Affected(x) || x.shape[1] != conv.in_channels || !AtRisk(conv, x)) return x;
            (taken ??= new())[conv] = x;
            return x.narrow(0, 0, 0);
        });
        conv.register_forward_hook((_, _, y) =>
        {
            if (taken is null || !taken.Remove(conv, out var x)) return y;
            return Float64(conv, x);
        });
    }

    // Which passes of a narrow conv went wrong in the measurements (notes, table): the input gradient when
    // out_channels is not a multiple of 16, the output when in_channels is not and is above 16 (guarded above 8,
    // for AVX2's blocks of 8; up to 8 channels oneDNN reads the plain NCHW input). The weight gradient never did. First layers (3 → 16 or 3 → 32 on a large image,
    // input without gradient) therefore keep oneDNN's speed: float64 would make them ~10x slower.
    static bool AtRisk(Convolution conv, Tensor x)
    {
        if (conv.transposed || conv.groups != 1) return true; // not characterised beyond the U-Net's shapes: always guard
        bool inputGradient = x.requires_grad && is_grad_enabled();
        return (inputGradient && conv.out_channels % SafeChannelMultiple != 0) || OutputAtRisk(conv, x.dtype);
    }

    /// <summary>Whether oneDNN's forward output of <paramref name="conv"/> (channels per group) went wrong in the
    /// measurements: in float32 when its input channels are above 8 and not a multiple of 16; in bfloat16 also
    /// when its output channels are not a multiple of 16 and the kernel is not 1x1 (3x3: 3 → 8 at 128² 50 %
    /// relative error, 16 → 8 20 %, 32 → 24 15 %, 32 → 40 10 %; 3 → 16, 8 → 16 and wider, and every 1x1 tried — 16 → 8,
    /// 64 → 24, 256 → 255 — 0.3 %, bfloat16's rounding), which cost a trained ×0.25 detector 40 points of mAP@0.5.</summary>
    internal static bool OutputAtRisk(Convolution conv, ScalarType dtype)
    {
        long inChannels = conv.in_channels / conv.groups, outChannels = conv.out_channels / conv.groups;
        return (inChannels > 8 && inChannels % SafeChannelMultiple != 0)
            || (dtype == ScalarType.BFloat16 && outChannels % SafeChannelMultiple != 0 && !conv.kernel_size.All(k => k == 1));
    }

    // bfloat16 (opt-in inference precision) goes to the same oneDNN blocked kernels, so its at-risk passes are guarded too
    static bool Affected(Tensor x) => x.device_type == DeviceType.CPU && x.dim() == 4
        && (x.dtype == ScalarType.Float32 || x.dtype == ScalarType.BFloat16);

    static Tensor Float64(Convolution conv, Tensor x)
    {
        using var scope = NewDisposeScope();
        var x64 = x.to(ScalarType.Float64);
        var w64 = conv.weight!.to(ScalarType.Float64);
        var b64 = conv.bias?.to(ScalarType.Float64);
        var y = conv.transposed
            ? nn.functional.conv_transpose2d(x64, w64, b64, strides: conv.stride, padding: conv.padding,
                output_padding: conv.output_padding, groups: conv.groups, dilation: conv.dilation)
            : nn.functional.conv2d(x64, w64, b64, strides: conv.stride, padding: conv.padding,
                dilation: conv.dilation, groups: conv.groups);
        return y.to(x.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <c>nn.functional.conv2d</c> through the guard: computed in float64 and returned as float32 when the input
    /// is float32 (or bfloat16) on the CPU and the channel counts <see cref="NeedsGuard"/>, else the plain call.
    /// </summary>
    public static Tensor Conv2d(Tensor input, Tensor weight, Tensor? bias = null, long[]? strides = null,
        long[]? padding = null, long[]? dilation = null, long groups = 1)
    {
        if (!Affected(input) || !NeedsGuard(input.shape[1], weight.shape[0], groups))
            return nn.functional.conv2d(input, weight, bias, strides, padding, dilation, groups);
        using var scope = NewDisposeScope();
        var y = nn.functional.conv2d(input.to(ScalarType.Float64), weight.to(ScalarType.Float64),
            bias?.to(ScalarType.Float64), strides, padding, dilation, groups);
        return y.to(input.dtype).MoveToOuterDisposeScope();
    }
}

using static TorchSharp.torch;

namespace DetSeg.Tests.Data.Formats;

static class TensorSame
{
    /// <summary>Same shape and every element equal.</summary>
    public static bool Same(this Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
}

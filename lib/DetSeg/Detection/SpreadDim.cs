using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Detection;

/// <summary>Spreads one dimension into several: with dims (85) at dim 1, [B x 255 x S x S] becomes [B x 85 x 3 x S x S].</summary>
/// <remarks>The course's <c>SpreadDim(*dims, dim)</c>: the remaining factor is appended when it is not 1.</remarks>
public sealed class SpreadDim : nn.Module<Tensor, Tensor>
{
    private readonly long[] dims;
    private readonly int dim;

    /// <summary>Creates the layer.</summary>
    public SpreadDim(long[] dims, int dim) : base(nameof(SpreadDim))
    {
        if (dims.Length == 0 || dims.Any(d => d < 1)) throw new ArgumentException("dims must be positive sizes.", nameof(dims));
        this.dims = dims;
        this.dim = dim;
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        int d = dim < 0 ? dim + (int)x.dim() : dim;
        var shape = x.shape.ToList();
        long prod = dims.Aggregate(1L, (a, b) => a * b);
        if (shape[d] % prod != 0)
            throw new ArgumentException($"SpreadDim: size {shape[d]} of dim {d} (shape [{string.Join(", ", x.shape)}]) is not divisible by {prod}.");
        long rest = shape[d] / prod;
        shape.RemoveAt(d);
        var spread = rest == 1 ? dims : dims.Append(rest).ToArray();
        shape.InsertRange(d, spread);
        return x.view(shape.ToArray());
    }
}

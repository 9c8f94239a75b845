using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Data;

/// <summary>PyTorch's default collate for <c>Tensor[]</c> items: field k of every item stacked along a new
/// dim 0, with variable-size fields padded up to the largest item first.</summary>
public static class Collate
{
    /// <summary>Stacks <paramref name="items"/> field by field: <c>[B x ...]</c> per field.</summary>
    /// <param name="items">Items with the same number of fields, each field of the same rank and dtype.</param>
    /// <param name="padValues">Per field, the value that pads a smaller item at the end of each dim (default 0;
    /// use -1 for label fields). Null: pad every field with 0.</param>
    /// <param name="disposeItems">Dispose the items' tensors once stacked.</param>
    /// <exception cref="ArgumentException">No items, or items disagree on field count, rank or dtype.</exception>
    public static Tensor[] Stack(IReadOnlyList<Tensor[]> items, IReadOnlyList<double>? padValues = null, bool disposeItems = false)
    {
        if (items.Count == 0) throw new ArgumentException("Cannot collate an empty batch.", nameof(items));
        int fields = items[0].Length;
        for (int i = 1; i < items.Count; i++)
            if (items[i].Length != fields)
                throw new ArgumentException($"Batch item {i} has {items[i].Length} fields; item 0 has {fields}.", nameof(items));
        var batch = new Tensor[fields];
        try
        {
            for (int f = 0; f < fields; f++)
                batch[f] = StackField(items.Select(it => it[f]).ToList(), f, padValues is not null && f < padValues.Count ? padValues[f] : 0.0);
        }
        finally
        {
            if (disposeItems)
                foreach (var item in items) foreach (var t in item) t.Dispose();
        }
        return batch;
    }

    static Tensor StackField(List<Tensor> tensors, int field, double padValue)
    {
        var first = tensors[0];
        long[] max = first.shape.ToArray();
        bool same = true;
        for (int i = 1; i < tensors.Count; i++)
        {
            var t = tensors[i];
            if (t.dim() != first.dim())
                throw new ArgumentException($"Field {field}: item {i} has shape [{string.Join(", ", t.shape)}] but item 0 has [{string.Join(", ", first.shape)}] (ranks differ).");
            if (t.dtype != first.dtype)
                throw new ArgumentException($"Field {field}: item {i} is {t.dtype} but item 0 is {first.dtype}.");
            for (int d = 0; d < max.Length; d++)
            {
                if (t.shape[d] != max[d]) same = false;
                max[d] = Math.Max(max[d], t.shape[d]);
            }
        }
        if (same) return stack(tensors);
        using var scope = NewDisposeScope();
        var padded = tensors.Select(t =>
        {
            // F.pad lists (left, right) pairs from the LAST dim backwards; pad only on the right/bottom.
            var pad = new long[2 * max.Length];
            for (int d = 0; d < max.Length; d++) pad[2 * (max.Length - 1 - d) + 1] = max[d] - t.shape[d];
            return nn.functional.pad(t, pad, PaddingModes.Constant, padValue);
        }).ToList();
        return stack(padded).MoveToOuterDisposeScope();
    }
}

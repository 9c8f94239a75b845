namespace DetSeg.Data;

/// <summary>A map-style dataset, like PyTorch's <c>Dataset</c>: a length and an indexer.</summary>
/// <typeparam name="T">The item type; task datasets use <c>Tensor[]</c> in a fixed field order.</typeparam>
public interface IDataset<out T>
{
    /// <summary>The number of items.</summary>
    int Count { get; }

    /// <summary>The item at <paramref name="index"/> (0 ≤ index &lt; <see cref="Count"/>).</summary>
    T this[int index] { get; }
}

/// <summary>A dataset that wraps another one (a subset, a task view): the C# form of the course's
/// <c>__getattr__</c> trick, which forwards attribute look-ups to the wrapped dataset.</summary>
public interface IDatasetWrapper
{
    /// <summary>The wrapped dataset.</summary>
    object Inner { get; }
}

/// <summary>A dataset that can build a whole batch at once (on the device), faster than item by item.
/// <see cref="DataLoader"/> uses it when present; the result must equal stacking the items.</summary>
public interface IBatchedDataset
{
    /// <summary>The items at <paramref name="indices"/>, each field stacked along a new dim 0.</summary>
    TorchSharp.torch.Tensor[] GetBatch(IReadOnlyList<int> indices);
}

/// <summary>Helpers over dataset wrappers.</summary>
public static class DatasetExtensions
{
    /// <summary>Finds the first dataset of type <typeparamref name="TFind"/> in the wrapper chain starting at
    /// <paramref name="dataset"/> (itself included), e.g. the <see cref="PennFudan"/> under a
    /// <c>PFSegmentation(Subset(PennFudan))</c>; null when there is none.</summary>
    public static TFind? Find<TFind>(this object dataset) where TFind : class
    {
        for (object? d = dataset; d is not null; d = (d as IDatasetWrapper)?.Inner)
            if (d is TFind found) return found;
        return null;
    }

    /// <summary>Like <see cref="Find{TFind}"/> but throws when the chain holds no <typeparamref name="TFind"/>.</summary>
    /// <exception cref="InvalidOperationException">No dataset of that type is wrapped.</exception>
    public static TFind Require<TFind>(this object dataset) where TFind : class =>
        dataset.Find<TFind>() ?? throw new InvalidOperationException(
            $"{dataset.GetType().Name} does not wrap a {typeof(TFind).Name} (wrapper chain: {Chain(dataset)}).");

    internal static string Chain(object dataset)
    {
        var names = new List<string>();
        for (object? d = dataset; d is not null; d = (d as IDatasetWrapper)?.Inner) names.Add(d.GetType().Name);
        return string.Join(" -> ", names);
    }

    internal static void CheckIndex(int index, int count, string what)
    {
        if ((uint)index >= (uint)count)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"{what} has {count} items; index {index} is out of range.");
    }
}

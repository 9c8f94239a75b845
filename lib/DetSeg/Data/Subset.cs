namespace DetSeg.Data;

/// <summary>The items of <see cref="Dataset"/> at <see cref="Indices"/>, like PyTorch's <c>Subset</c>.
/// Attributes of the wrapped dataset stay reachable through <see cref="DatasetExtensions.Find{TFind}"/>.</summary>
public sealed class Subset<T> : IDataset<T>, IDatasetWrapper, IBatchedDataset
{
    /// <summary>Wraps <paramref name="dataset"/> restricted to <paramref name="indices"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An index is outside the dataset.</exception>
    public Subset(IDataset<T> dataset, IReadOnlyList<int> indices)
    {
        Dataset = dataset;
        Indices = indices.ToArray();
        foreach (int i in Indices) DatasetExtensions.CheckIndex(i, dataset.Count, dataset.GetType().Name);
    }

    /// <summary>The wrapped dataset.</summary>
    public IDataset<T> Dataset { get; }

    /// <summary>The indices into <see cref="Dataset"/>, in subset order.</summary>
    public IReadOnlyList<int> Indices { get; }

    /// <inheritdoc/>
    public int Count => Indices.Count;

    /// <inheritdoc/>
    public T this[int index]
    {
        get
        {
            DatasetExtensions.CheckIndex(index, Count, "Subset");
            return Dataset[Indices[index]];
        }
    }

    object IDatasetWrapper.Inner => Dataset;

    /// <summary>Delegates to the wrapped dataset's batch path when it has one, else stacks items.</summary>
    public TorchSharp.torch.Tensor[] GetBatch(IReadOnlyList<int> indices)
    {
        var mapped = indices.Select(i => { DatasetExtensions.CheckIndex(i, Count, "Subset"); return Indices[i]; }).ToArray();
        if (Dataset is IBatchedDataset b) return b.GetBatch(mapped);
        if (Dataset is IDataset<TorchSharp.torch.Tensor[]> td) return Collate.Stack(mapped.Select(i => td[i]).ToList(), null, disposeItems: true);
        throw new InvalidOperationException($"Subset of {Dataset.GetType().Name}: items are {typeof(T).Name}, not Tensor[]; they cannot be batched.");
    }

    /// <inheritdoc/>
    public override string ToString() => $"Subset(num_items={Count}, of={Dataset})";
}

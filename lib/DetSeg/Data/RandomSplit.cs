using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Data;

/// <summary>PyTorch's <c>random_split</c>: the same permutation for the same seed, so the course's split
/// (<c>torch.manual_seed(0); random_split(PennFudan(), [136, 17, 17])</c>) comes out index for index.</summary>
public static class RandomSplit
{
    /// <summary>Splits <paramref name="dataset"/> into non-overlapping subsets of the given sizes.</summary>
    /// <param name="dataset">The dataset to split.</param>
    /// <param name="sizes">Subset sizes that sum to the dataset's length.</param>
    /// <param name="seed">The generator seed; PyTorch's <c>random_split</c> draws <c>randperm(sum)</c> from a
    /// generator seeded like <c>torch.manual_seed(seed)</c>.</param>
    /// <exception cref="ArgumentException">A size is negative or the sizes do not sum to the dataset's length.</exception>
    public static Subset<T>[] Split<T>(IDataset<T> dataset, IReadOnlyList<int> sizes, long seed = 0)
    {
        if (sizes.Any(s => s < 0))
            throw new ArgumentException($"Split sizes must be ≥ 0, got [{string.Join(", ", sizes)}].", nameof(sizes));
        long total = sizes.Sum(s => (long)s);
        if (total != dataset.Count)
            throw new ArgumentException($"Split sizes [{string.Join(", ", sizes)}] sum to {total}, but {dataset.GetType().Name} has {dataset.Count} items.", nameof(sizes));
        var permutation = Permutation(total, seed);
        var subsets = new Subset<T>[sizes.Count];
        int offset = 0;
        for (int k = 0; k < sizes.Count; k++)
        {
            subsets[k] = new Subset<T>(dataset, new ArraySegment<int>(permutation, offset, sizes[k]));
            offset += sizes[k];
        }
        return subsets;
    }

    /// <summary>Splits by fractions that sum to 1, like PyTorch ≥ 1.13: floors, then hands the remainder out
    /// one by one from the first subset on.</summary>
    /// <exception cref="ArgumentException">The fractions are not in [0, 1] or do not sum to 1.</exception>
    public static Subset<T>[] Split<T>(IDataset<T> dataset, IReadOnlyList<double> fractions, long seed = 0)
    {
        if (fractions.Any(f => f < 0 || f > 1) || Math.Abs(fractions.Sum() - 1) > 1e-6)
            throw new ArgumentException($"Split fractions must lie in [0, 1] and sum to 1, got [{string.Join(", ", fractions)}].", nameof(fractions));
        var sizes = fractions.Select(f => (int)Math.Floor(dataset.Count * f)).ToArray();
        int remainder = dataset.Count - sizes.Sum();
        for (int i = 0; i < remainder; i++) sizes[i % sizes.Length]++;
        return Split(dataset, sizes, seed);
    }

    /// <summary><c>randperm(n)</c> from a generator seeded with <paramref name="seed"/>.</summary>
    public static int[] Permutation(long n, long seed)
    {
        using var generator = new Generator((ulong)seed, new Device(DeviceType.CPU));
        using var perm = randperm(n, generator: generator);
        return perm.data<long>().Select(v => (int)v).ToArray();
    }
}

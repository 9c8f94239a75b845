using DetSeg.Data;
using static TorchSharp.torch;

namespace DetSeg.Attention;

/// <summary>Train / validation / test digits for the Vision Transformer, and where they came from.</summary>
/// <param name="Train">Training digits.</param>
/// <param name="Validation">Validation digits (model selection).</param>
/// <param name="Test">Test digits (reported once, at the end).</param>
/// <param name="Description">One line saying which files and split were used.</param>
public sealed record DigitSplits(IDataset<Tensor[]> Train, IDataset<Tensor[]> Validation, IDataset<Tensor[]> Test, string Description);

/// <summary>MNIST splits for <see cref="VisionTransformer"/> training (items are [image [1 x 28 x 28], label]).</summary>
public static class MnistDigits
{
    /// <summary>
    /// Loads the digits. With <paramref name="useTrainSplit"/> and the training files present in
    /// <c>&lt;root&gt;/raw/</c>: train = the 60,000 training digits minus 5,000 for validation (seeded), test = the
    /// 10,000 test digits. Otherwise only the test split is used (the offline case: it is all the shared data
    /// holds), split 8,000 / 1,000 / 1,000 with <paramref name="seed"/> as PyTorch's <c>random_split</c> would.
    /// </summary>
    /// <param name="root">The folder holding <c>raw/</c> (null: <c>$DETSEG_DATA/MNIST</c>).</param>
    /// <param name="useTrainSplit">Use the 60,000 training digits when their files are present (never downloads them).</param>
    /// <param name="seed">Seed of the split permutation.</param>
    /// <param name="download">Download the test files when missing (md5-checked).</param>
    /// <param name="limit">Keep at most this many digits per split (the first ones of each split), e.g. for a smoke run.</param>
    /// <exception cref="DataUnavailableException">The test files are missing and cannot be downloaded.</exception>
    public static DigitSplits Load(string? root = null, bool useTrainSplit = true, long seed = 0, bool download = true, int? limit = null)
    {
        root ??= Runtime.DataPaths.Under("MNIST");
        var test = new MNIST(root, train: false, download: download);
        DigitSplits splits;
        if (useTrainSplit && HasTrainFiles(root))
        {
            var full = new MNIST(root, train: true, download: false);
            var parts = RandomSplit.Split(full, [full.Count - 5000, 5000], seed);
            splits = new DigitSplits(parts[0], parts[1], test, $"MNIST train split {parts[0].Count}/{parts[1].Count} (seed {seed}), test split {test.Count}, from {root}");
        }
        else
        {
            if (test.Count != 10_000)
                throw new InvalidDataException($"MNIST test split in {root} has {test.Count} digits, expected 10,000 for the 8000/1000/1000 split.");
            var parts = RandomSplit.Split(test, [8000, 1000, 1000], seed);
            splits = new DigitSplits(parts[0], parts[1], parts[2], $"MNIST test split (t10k) as 8000/1000/1000 (seed {seed}), from {root}");
        }
        if (limit is int n)
        {
            if (n < 1) throw new ArgumentException($"limit must be ≥ 1, got {n}.", nameof(limit));
            splits = new DigitSplits(Head(splits.Train, n), Head(splits.Validation, n), Head(splits.Test, n),
                                     splits.Description + $", first {n} of each");
        }
        return splits;
    }

    static IDataset<Tensor[]> Head(IDataset<Tensor[]> d, int n) =>
        d.Count <= n ? d : new Subset<Tensor[]>(d, Enumerable.Range(0, n).ToArray());

    // Both files, gzipped or not: a lone train-labels file (as in the shared data) is not a training split.
    static bool HasTrainFiles(string root)
    {
        string raw = Path.Combine(root, "raw");
        bool Has(string name) => File.Exists(Path.Combine(raw, name)) || File.Exists(Path.Combine(raw, name + ".gz"));
        return Has("train-images-idx3-ubyte") && Has("train-labels-idx1-ubyte");
    }
}

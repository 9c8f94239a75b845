using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Data;

/// <summary>MNIST digits read from the IDX files in <c>&lt;root&gt;/raw/</c> (gzipped or not), like
/// <c>torchvision.datasets.MNIST(..., transform=ToTensor())</c>: item = [image <c>[1 x 28 x 28]</c> float in
/// [0, 1], label scalar int64].</summary>
/// <remarks>The course only uses the test split (10,000 digits); it is the default.</remarks>
public sealed class MNIST : IDataset<Tensor[]>, IBatchedDataset, IDisposable
{
    /// <summary>Mirrors tried in order (PyTorch's, then the original site).</summary>
    public static readonly string[] Mirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"];

    /// <summary>md5 of the gzipped files, as torchvision lists them.</summary>
    public static readonly IReadOnlyDictionary<string, string> Md5 = new Dictionary<string, string>
    {
        ["t10k-images-idx3-ubyte.gz"] = "9fb629c4189551a2d022fa330f9573f3",
        ["t10k-labels-idx1-ubyte.gz"] = "ec29112dd5afa0611ce80d1b7f02629c",
        ["train-images-idx3-ubyte.gz"] = "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        ["train-labels-idx1-ubyte.gz"] = "d53e105ee54ea40749a09fcbcd1e9432",
    };

    /// <summary>Loads the split from <paramref name="root"/> (default <c>$DETSEG_DATA/MNIST</c>).</summary>
    /// <param name="root">The folder holding <c>raw/</c>.</param>
    /// <param name="train">The training split instead of the test split.</param>
    /// <param name="download">Download missing files (md5-checked) instead of failing.</param>
    /// <exception cref="DataUnavailableException">Files are missing and cannot be (or may not be) downloaded.</exception>
    /// <exception cref="InvalidDataException">A file is malformed, or image and label counts differ.</exception>
    public MNIST(string? root = null, bool train = false, bool download = true)
    {
        Root = root ?? Runtime.DataPaths.Under("MNIST");
        Train = train;
        string prefix = train ? "train" : "t10k";
        string imagesFile = Locate(prefix + "-images-idx3-ubyte", download);
        string labelsFile = Locate(prefix + "-labels-idx1-ubyte", download);
        var (ishape, ibytes) = Idx.Read(imagesFile, Idx.ImagesMagic);
        var (lshape, lbytes) = Idx.Read(labelsFile, Idx.LabelsMagic);
        if (ishape.Length != 3 || ishape[1] != 28 || ishape[2] != 28)
            throw new InvalidDataException($"{imagesFile}: images must be [N x 28 x 28], got [{string.Join(" x ", ishape)}].");
        if (lshape.Length != 1 || lshape[0] != ishape[0])
            throw new InvalidDataException($"{labelsFile}: {(lshape.Length == 1 ? lshape[0] : -1)} labels for {ishape[0]} images in {imagesFile}.");
        if (lbytes.Any(b => b > 9))
            throw new InvalidDataException($"{labelsFile}: labels must be 0..9, found {lbytes.Max()}.");
        Images = tensor(ibytes, [ishape[0], 28, 28], ScalarType.Byte);
        Labels = tensor(lbytes, [lshape[0]], ScalarType.Byte).to(ScalarType.Int64);
        LabelArray = lbytes;
    }

    /// <summary>The folder holding <c>raw/</c>.</summary>
    public string Root { get; }
    /// <summary>Whether this is the training split.</summary>
    public bool Train { get; }
    /// <summary>All digits, <c>[N x 28 x 28]</c> uint8 on the CPU.</summary>
    public Tensor Images { get; }
    /// <summary>All labels, <c>[N]</c> int64 on the CPU.</summary>
    public Tensor Labels { get; }
    internal byte[] LabelArray { get; }

    /// <inheritdoc/>
    public int Count => (int)Images.shape[0];

    /// <summary>The label of digit <paramref name="index"/> without touching tensors.</summary>
    public int Label(int index) => LabelArray[index];

    /// <inheritdoc/>
    public Tensor[] this[int index]
    {
        get
        {
            DatasetExtensions.CheckIndex(index, Count, "MNIST");
            using var scope = NewDisposeScope();
            var image = Images[index].unsqueeze(0).to(ScalarType.Float32).div_(Runtime.Scalars.Max8Bit); // [1 x 28 x 28]; held Scalar: DataLoader workers
            var label = Labels[index].clone();                                       // [] int64
            return [image.MoveToOuterDisposeScope(), label.MoveToOuterDisposeScope()];
        }
    }

    /// <inheritdoc/>
    public Tensor[] GetBatch(IReadOnlyList<int> indices)
    {
        foreach (int i in indices) DatasetExtensions.CheckIndex(i, Count, "MNIST");
        using var scope = NewDisposeScope();
        var idx = tensor(indices.Select(i => (long)i).ToArray());
        var images = Images.index_select(0, idx).unsqueeze(1).to(ScalarType.Float32).div_(Runtime.Scalars.Max8Bit); // [B x 1 x 28 x 28]
        var labels = Labels.index_select(0, idx);                                                // [B]
        return [images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope()];
    }

    string Locate(string name, bool download)
    {
        string raw = Path.Combine(Root, "raw");
        foreach (var candidate in new[] { Path.Combine(raw, name + ".gz"), Path.Combine(raw, name) })
            if (File.Exists(candidate)) return candidate;
        string target = Path.Combine(raw, name + ".gz");
        if (!download)
            throw new DataUnavailableException($"MNIST file {name}(.gz) not found in {raw}; put it there (md5 {Md5[name + ".gz"]} for the .gz) or pass download: true.");
        return Download.EnsureFile(target, Mirrors.Select(m => m + name + ".gz").ToList(), Md5[name + ".gz"]);
    }

    /// <summary>Frees the image and label tensors.</summary>
    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }

    /// <inheritdoc/>
    public override string ToString() => $"MNIST(split={(Train ? "train" : "test")}, num_images={Count})";
}

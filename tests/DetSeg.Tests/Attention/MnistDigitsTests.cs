using DetSeg.Attention;
using DetSeg.Data;
using DetSeg.Tests.Data;
using static TorchSharp.torch;

namespace DetSeg.Tests.Attention;

public class MnistDigitsTests
{
    [Fact]
    public void TestSplitOnly_IsSplit8000_1000_1000_LikeRandomSplit()
    {
        string root = Fixtures.MnistFolder(10_000);
        // A lone train-labels file (as in ../shared/data) must not count as a training split.
        File.Copy(Path.Combine(root, "raw", "t10k-labels-idx1-ubyte.gz"), Path.Combine(root, "raw", "train-labels-idx1-ubyte.gz"));
        var splits = MnistDigits.Load(root, seed: 0, download: false);
        Assert.Equal(8000, splits.Train.Count);
        Assert.Equal(1000, splits.Validation.Count);
        Assert.Equal(1000, splits.Test.Count);
        Assert.Contains("8000/1000/1000", splits.Description);
        // PyTorch's random_split order: randperm(10000) from a generator seeded with 0, cut in that order.
        var perm = RandomSplit.Permutation(10_000, 0);
        Assert.Equal(perm[..8000], ((Subset<Tensor[]>)splits.Train).Indices);
        Assert.Equal(perm[9000..], ((Subset<Tensor[]>)splits.Test).Indices);
        var item = splits.Test[0];
        Assert.Equal(new long[] { 1, 28, 28 }, item[0].shape);
        Assert.Equal(perm[9000] % 10, item[1].item<long>());   // fixture label of digit i is i % 10
    }

    [Fact]
    public void TrainFilesPresent_UsesTrainSplitMinus5000_AndTheTestSplit()
    {
        string root = Fixtures.MnistFolder(10_000);
        var images = new byte[5100 * 784];
        Fixtures.WriteIdx(Path.Combine(root, "raw", "train-images-idx3-ubyte.gz"), 2051, [5100, 28, 28], images);
        Fixtures.WriteIdx(Path.Combine(root, "raw", "train-labels-idx1-ubyte.gz"), 2049, [5100], new byte[5100]);
        var splits = MnistDigits.Load(root, download: false);
        Assert.Equal((100, 5000, 10_000), (splits.Train.Count, splits.Validation.Count, splits.Test.Count));

        var offline = MnistDigits.Load(root, useTrainSplit: false, download: false, limit: 64);
        Assert.Equal((64, 64, 64), (offline.Train.Count, offline.Validation.Count, offline.Test.Count));
    }

    [Fact]
    public void MissingFiles_WithoutDownload_ThrowNamingTheFolder()
    {
        string root = Path.Combine(TestPaths.NewTempDir(), "MNIST");
        var e = Assert.Throws<DataUnavailableException>(() => MnistDigits.Load(root, download: false));
        Assert.Contains(root, e.Message);
    }

    [SkippableFact]
    public void SharedData_GivesThe8000_1000_1000Split()
    {
        Skip.If(TestPaths.SharedData is null, "../shared/data (real MNIST) is not present");
        var splits = MnistDigits.Load(Path.Combine(TestPaths.SharedData!, "MNIST"), download: false);
        Assert.Equal((8000, 1000, 1000), (splits.Train.Count, splits.Validation.Count, splits.Test.Count));
    }
}

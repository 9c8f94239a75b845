using DetSeg.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Data;

public class MNISTTests
{
    [Fact]
    public void Idx_ReadsGzipAndPlain_AndChecksHeader()
    {
        string dir = TestPaths.NewTempDir();
        Fixtures.WriteIdx(Path.Combine(dir, "a.gz"), 2049, [3], [1, 2, 3]);
        Fixtures.WriteIdx(Path.Combine(dir, "b"), 2051, [1, 2, 2], [9, 8, 7, 6], gzip: false);
        var (shape, data) = Idx.Read(Path.Combine(dir, "a.gz"));
        Assert.Equal(new[] { 3 }, shape);
        Assert.Equal(new byte[] { 1, 2, 3 }, data);
        Assert.Equal(new byte[] { 9, 8, 7, 6 }, Idx.Read(Path.Combine(dir, "b"), Idx.ImagesMagic).Data);

        var wrongKind = Assert.Throws<InvalidDataException>(() => Idx.Read(Path.Combine(dir, "a.gz"), Idx.ImagesMagic));
        Assert.Contains("a.gz", wrongKind.Message);
        Fixtures.WriteIdx(Path.Combine(dir, "short"), 2049, [5], [1, 2, 3]);
        var shortData = Assert.Throws<InvalidDataException>(() => Idx.Read(Path.Combine(dir, "short")));
        Assert.Contains("holds 3", shortData.Message);
        File.WriteAllBytes(Path.Combine(dir, "magic"), [0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0]);
        Assert.Contains("bad IDX magic", Assert.Throws<InvalidDataException>(() => Idx.Read(Path.Combine(dir, "magic"))).Message);
    }

    [Fact]
    public void Item_IsImage1x28x28InUnitRange_AndInt64ScalarLabel()
    {
        using var mnist = new MNIST(Fixtures.MnistFolder(12), download: false);
        Assert.Equal(12, mnist.Count);
        var item = mnist[3];
        Assert.Equal(new long[] { 1, 28, 28 }, item[0].shape);
        Assert.Equal(ScalarType.Float32, item[0].dtype);
        Assert.Equal(1.0f, item[0].max().item<float>());
        Assert.Equal(81.0f, item[0].sum().item<float>());   // a 9x9 square of ones (fixture: side 6 + 3)
        Assert.Equal(0, item[1].dim());
        Assert.Equal(ScalarType.Int64, item[1].dtype);
        Assert.Equal(3L, item[1].item<long>());

        var batch = mnist.GetBatch([3, 11]);
        Assert.Equal(new long[] { 2, 1, 28, 28 }, batch[0].shape);
        Assert.True(batch[0][0].allclose(item[0], rtol: 0, atol: 0));
        Assert.Equal(new long[] { 3, 1 }, batch[1].data<long>().ToArray());
    }

    [Fact]
    public void CountMismatch_AndMissingFiles_AreClearErrors()
    {
        string root = Fixtures.MnistFolder(4);
        Fixtures.WriteIdx(Path.Combine(root, "raw", "t10k-labels-idx1-ubyte.gz"), 2049, [3], [1, 2, 3]);
        Assert.Contains("3 labels for 4 images", Assert.Throws<InvalidDataException>(() => new MNIST(root, download: false)).Message);
        var missing = Assert.Throws<DataUnavailableException>(() => new MNIST(TestPaths.NewTempDir(), download: false));
        Assert.Contains("t10k-images-idx3-ubyte", missing.Message);
    }

    [SkippableFact]
    public void RealTestSplit_Has10000DigitsWithKnownClassCounts()
    {
        Skip.If(TestPaths.SharedData is null, "../shared/data is not present");
        using var mnist = new MNIST(Path.Combine(TestPaths.SharedData!, "MNIST"), download: false);
        Assert.Equal(10000, mnist.Count);
        // Class counts from ../shared/data/SOURCES.md (the canonical t10k labels).
        using var counts = bincount(mnist.Labels, minlength: 10);
        Assert.Equal(new long[] { 980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009 }, counts.data<long>().ToArray());
    }
}

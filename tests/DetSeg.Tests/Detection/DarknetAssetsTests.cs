using System.Security.Cryptography;
using DetSeg.Detection;
using DetSeg.Tests.Data;

namespace DetSeg.Tests.Detection;

public class DarknetAssetsTests
{
    static string Md5(byte[] b) => Convert.ToHexStringLower(MD5.HashData(b));

    [SkippableFact]
    public void Samples_MatchTheRealFiles_SizeAndMd5()
    {
        // The real darknet files (../shared/data/darknet, taken from pjreddie/darknet at the pinned commit) are the golden.
        string? data = TestPaths.SharedData;
        Skip.If(data is null || !Directory.Exists(Path.Combine(data, "darknet")), "no real data");
        foreach (var a in DarknetAssets.Samples)
        {
            var bytes = File.ReadAllBytes(Path.Combine(data!, a.RelativePath));
            Assert.Equal(a.Bytes, bytes.Length);
            Assert.Equal(a.Md5, Md5(bytes));
            Assert.StartsWith(DarknetAssets.RepoBase, a.Url);
        }
        Assert.Equal("weights/yolov3.weights", DarknetAssets.Weights.RelativePath);
        Assert.Equal(DarknetWeights.Md5, DarknetAssets.Weights.Md5);
    }

    [Fact]
    public void Download_PutsEachFileUnderTheDataRoot_AndNeverABadOne()
    {
        byte[] names = "person\nbicycle\ncar\n"u8.ToArray(), weights = new byte[40_000];
        new Random(3).NextBytes(weights);
        using var namesServer = new LocalHttpServer(names);
        using var weightsServer = new LocalHttpServer(weights);
        string root = TestPaths.NewTempDir();
        var good = new DarknetAsset("darknet/coco.names", namesServer.Url, Md5(names), names.Length);
        var bad = new DarknetAsset("weights/yolov3.weights", weightsServer.Url, "00000000000000000000000000000000", weights.Length);

        var log = new StringWriter();
        Assert.False(DarknetAssets.TryDownload(log, root, [good, bad]));
        Assert.Contains("Checksum mismatch", log.ToString());
        Assert.Equal(names, File.ReadAllBytes(Path.Combine(root, "darknet", "coco.names")));
        Assert.Empty(Directory.GetFiles(Path.Combine(root, "weights")));

        var paths = DarknetAssets.Download(root, [good, bad with { Md5 = Md5(weights) }], TextWriter.Null);
        Assert.Equal([Path.Combine(root, "darknet", "coco.names"), Path.Combine(root, "weights", "yolov3.weights")], paths);
        Assert.Equal(weights, File.ReadAllBytes(paths[1]));
    }
}

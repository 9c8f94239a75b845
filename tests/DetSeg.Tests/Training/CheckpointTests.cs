using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Training;

[Collection(GlobalRng.Name)]
public class CheckpointTests : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), "detseg-ckpt-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void SaveLoad_RoundTripsWeightsOptimizerAndMetrics_IncludingNaN()
    {
        var g = new Generator(1);
        var model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2));
        var opt = optim.Adam(model.parameters(), 0.01);
        model.call(randn(new long[] { 4, 3 }, generator: g)).sum().backward();
        opt.step();
        var ck = Checkpoint.Capture(model, opt, 3, new Dictionary<string, double> { ["val/loss"] = 0.25, ["val/x"] = double.NaN });
        string path = Path.Combine(dir, "run", "best.ckpt");
        ck.Save(path);
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(path)!, "*.tmp-*"));

        var other = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2));
        var otherOpt = optim.Adam(other.parameters(), 0.01);
        var loaded = Checkpoint.Load(path);
        loaded.Restore(other, otherOpt);
        Assert.Equal(3, loaded.Epoch);
        Assert.Equal(0.25, loaded.Metrics["val/loss"]);
        Assert.True(double.IsNaN(loaded.Metrics["val/x"]));
        foreach (var (k, v) in model.state_dict())
            Assert.Equal(v.to(ScalarType.Float64).data<double>().ToArray(), other.state_dict()[k].to(ScalarType.Float64).data<double>().ToArray());
        // Same optimizer state: one more identical step keeps the two models identical.
        var x = randn(new long[] { 4, 3 }, generator: g);
        foreach (var (m, o) in new[] { (model, opt), (other, otherOpt) }) { o.zero_grad(); m.call(x).sum().backward(); o.step(); }
        Assert.Equal(model.state_dict()["0.weight"].data<float>().ToArray(), other.state_dict()["0.weight"].data<float>().ToArray());
    }

    [Fact]
    public void Restore_WithRng_SetsTheGeneratorState()
    {
        var model = nn.Linear(2, 2);
        var ck = Checkpoint.Capture(model, null, 0, new Dictionary<string, double>());
        torch.manual_seed(4242);
        ck.Restore(model, restoreRng: true);
        using var state = torch.random.get_rng_state();
        Assert.Equal(ck.RngBytes, state.data<byte>().ToArray());
    }

    [Fact]
    public void ExtraGenerators_RoundTripThroughTheFile()
    {
        var g = new Generator(17);
        var ck = Checkpoint.Capture(nn.Linear(2, 2), null, 0, new Dictionary<string, double>(), generators: [g]);
        string path = Path.Combine(dir, "g.ckpt");
        ck.Save(path);
        var expected = torch.rand(5, generator: g).data<float>().ToArray();   // what comes next after the capture
        torch.rand(3, generator: g);                                          // move on
        Checkpoint.Load(path).Restore(nn.Linear(2, 2), generators: [g]);
        Assert.Equal(expected, torch.rand(5, generator: g).data<float>().ToArray());
        Assert.Throws<ArgumentException>(() => Checkpoint.Load(path).Restore(nn.Linear(2, 2), generators: [g, new Generator(1)]));
    }

    [Fact]
    public void Load_NotACheckpoint_NamesTheFile()
    {
        Directory.CreateDirectory(dir);
        string bad = Path.Combine(dir, "bad.ckpt");
        File.WriteAllText(bad, "hello, this is not a checkpoint");
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(bad));
        Assert.Contains(bad, e.Message);
        Assert.Throws<FileNotFoundException>(() => Checkpoint.Load(Path.Combine(dir, "missing.ckpt")));
    }

    [Fact]
    public void Load_TruncatedCheckpoint_SaysTruncated()
    {
        var ck = Checkpoint.Capture(nn.Linear(20, 20), null, 0, new Dictionary<string, double>());
        string path = Path.Combine(dir, "t.ckpt");
        ck.Save(path);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path));
        Assert.Contains("t.ckpt", e.Message);
    }
}

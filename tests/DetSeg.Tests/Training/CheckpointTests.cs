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

    static Dictionary<string, float[]> Snapshot(nn.Module m) =>
        m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float32).data<float>().ToArray());

    static void AssertUnchanged(Dictionary<string, float[]> before, nn.Module m)
    {
        var after = Snapshot(m);
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        foreach (var (k, v) in before) Assert.Equal(v, after[k]);
    }

    [Fact]
    public void Load_FourBytesFlippedInsideTheWeights_FailsTheBlockChecksum()
    {
        var ck = Checkpoint.Capture(nn.Linear(20, 20), null, 0, new Dictionary<string, double>());
        string path = Path.Combine(dir, "w.ckpt");
        ck.Save(path);
        var bytes = File.ReadAllBytes(path);
        // Magic (12), header length (8), header, its SHA-256 (32), model length (8), then the weights.
        int at = 12 + 8 + (int)BitConverter.ToInt64(bytes, 12) + 32 + 8 + 800;
        for (int i = at; i < at + 4; i++) bytes[i] ^= 0x40;
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("block 1 (model", e.Message);
        Assert.Contains("checksum", e.Message);
    }

    [Fact]
    public void Capture_WithAnAverage_SavesItAsTheModel_AndTheLiveWeightsBeside_ChecksummedLikeTheRest()
    {
        var model = nn.Linear(20, 20);
        var initial = model.weight!.data<float>().ToArray();
        using var ema = new ModelEma(model, decay: 0.5, tau: 1e-9);
        using (no_grad()) model.weight!.fill_(4.0f);
        ema.Update();
        var expected = initial.Select(w => 0.5 * w + 0.5 * 4.0).ToArray();   // the average, by hand
        var ck = Checkpoint.Capture(model, null, 2, new Dictionary<string, double>(), ema: ema);
        Assert.Equal(4.0f, model.weight!.data<float>().Distinct().Single());   // capturing leaves the live weights in place
        string path = Path.Combine(dir, "ema.ckpt");
        ck.Save(path);
        var back = Checkpoint.Load(path);
        Assert.True(back.HasTrainingWeights);
        using var target = nn.Linear(20, 20);
        back.Restore(target);
        var restored = target.weight!.data<float>().ToArray();
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], restored[i], 1e-6);   // float32 arithmetic
        back.RestoreTrainingWeights(target);
        Assert.Equal(4.0f, target.weight!.data<float>().Distinct().Single());
        var plain = Checkpoint.Capture(model, null, 2, new Dictionary<string, double>());
        Assert.False(plain.HasTrainingWeights);
        Assert.Throws<InvalidOperationException>(() => plain.RestoreTrainingWeights(target));

        // the last block is the training weights: a flipped byte there fails its checksum by name
        var bytes = File.ReadAllBytes(path);
        for (int i = bytes.Length - 32 - 100; i < bytes.Length - 32 - 96; i++) bytes[i] ^= 0x40;
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path));
        Assert.Contains("training weights", e.Message);
        Assert.Contains("checksum", e.Message);
    }

    /// <summary>A file in the first format (no checksums), written byte by byte as that version's Save wrote it.</summary>
    static void WriteVersion1(string path, byte[] header, Checkpoint ck)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var w = new BinaryWriter(File.Create(path));
        w.Write(System.Text.Encoding.ASCII.GetBytes("DETSEG-CKPT1"));
        foreach (var block in new[] { header, ck.ModelBytes, ck.OptimizerBytes, ck.RngBytes })
        {
            w.Write((long)block.Length);
            w.Write(block);
        }
    }

    [Fact]
    public void Load_Version1File_StillLoadsAndRestores()
    {
        torch.manual_seed(3);
        var model = nn.Linear(3, 2);
        var ck = Checkpoint.Capture(model, null, 0, new Dictionary<string, double>());
        string path = Path.Combine(dir, "v1.ckpt");
        WriteVersion1(path, """{"Epoch":2,"Metrics":{"val/loss":0.5,"val/x":"NaN"},"Extra":{}}"""u8.ToArray(), ck);
        var loaded = Checkpoint.Load(path);
        Assert.Equal(2, loaded.Epoch);
        Assert.Equal(0.5, loaded.Metrics["val/loss"]);
        Assert.True(double.IsNaN(loaded.Metrics["val/x"]));
        var other = nn.Linear(3, 2);
        loaded.Restore(other);
        Assert.Equal(Snapshot(model)["weight"], Snapshot(other)["weight"]);
    }

    [Fact]
    public void Load_CorruptJsonHeader_IsAnInvalidDataExceptionNamingTheFile()
    {
        var ck = Checkpoint.Capture(nn.Linear(3, 2), null, 0, new Dictionary<string, double>());
        string path = Path.Combine(dir, "json.ckpt");
        WriteVersion1(path, """{"Epoch":2,"Metrics":{"val/loss":0.5},"Extra":{}#"""u8.ToArray(), ck);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("header", e.Message);

        // In the current format the same byte is caught by the header block's checksum.
        ck.Save(path);
        var bytes = File.ReadAllBytes(path);
        bytes[12 + 8 + 3] ^= 0x20;   // inside the JSON, after the magic and the block length
        File.WriteAllBytes(path, bytes);
        var c = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path));
        Assert.Contains(path, c.Message);
        Assert.Contains("block 0 (header", c.Message);
    }

    [Fact]
    public void Restore_CheckpointOfAnotherModel_ListsEveryMismatch_AndChangesNothing()
    {
        // A 2-class head restored into a 3-class one: TorchSharp copied the first tensors before failing.
        var two = nn.Sequential(("stem", nn.Linear(4, 4)), ("head", nn.Linear(4, 2)), ("bn", nn.BatchNorm1d(2)));
        string path = Path.Combine(dir, "two.ckpt");
        Checkpoint.Capture(two, null, 5, new Dictionary<string, double>()).Save(path);
        var three = nn.Sequential(("stem", nn.Linear(4, 4)), ("head", nn.Linear(4, 3)), ("bn", nn.BatchNorm1d(3)));
        var before = Snapshot(three);
        var e = Assert.Throws<ArgumentException>(() => Checkpoint.Load(path).Restore(three));
        Assert.Contains(path, e.Message);
        Assert.Contains("head.weight: checkpoint [2 x 4] Float32, model [3 x 4] Float32", e.Message);
        Assert.Contains("head.bias: checkpoint [2] Float32, model [3] Float32", e.Message);
        foreach (var k in new[] { "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var" })
            Assert.Contains($"{k}: checkpoint [2] Float32, model [3] Float32", e.Message);
        Assert.DoesNotContain("stem.", e.Message);
        AssertUnchanged(before, three);

        // Missing and unexpected keys are listed too.
        var deeper = nn.Sequential(("stem", nn.Linear(4, 4)), ("head", nn.Linear(4, 2)), ("bn", nn.BatchNorm1d(2)), ("extra", nn.Linear(2, 2)));
        var m = Assert.Throws<ArgumentException>(() => Checkpoint.Load(path).Restore(deeper));
        Assert.Contains("extra.weight: model [2 x 2] Float32, not in the checkpoint", m.Message);
        var shallow = nn.Sequential(("stem", nn.Linear(4, 4)), ("head", nn.Linear(4, 2)));
        var s = Assert.Throws<ArgumentException>(() => Checkpoint.Load(path).Restore(shallow));
        Assert.Contains("bn.running_var: checkpoint [2] Float32, not in the model", s.Message);
    }

    [Fact]
    public void Restore_AdamCheckpointIntoSgd_FailsBeforeTheWeightsChange()
    {
        var model = nn.Linear(3, 2);
        var adam = optim.Adam(model.parameters(), 0.01);
        model.call(randn(4, 3)).sum().backward();
        adam.step();
        var ck = Checkpoint.Capture(model, adam, 1, new Dictionary<string, double>());
        var other = nn.Linear(3, 2);
        var sgd = optim.SGD(other.parameters(), 0.1);
        var before = Snapshot(other);
        var e = Assert.Throws<ArgumentException>(() => ck.Restore(other, sgd));
        Assert.Contains("Adam", e.Message);
        Assert.Contains("SGD", e.Message);
        AssertUnchanged(before, other);
        // The same optimizer type over a model of the same shape restores.
        ck.Restore(other, optim.Adam(other.parameters(), 0.01));
        Assert.Equal(Snapshot(model)["weight"], Snapshot(other)["weight"]);
    }
}

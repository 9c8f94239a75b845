using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Training;

public class TrainerTests : IDisposable
{
    readonly string root = Path.Combine(Path.GetTempPath(), "detseg-trainer-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
    }

    /// <summary>A tiny segmentation-like task: conv, BatchNorm (so buffers matter), conv to 2 classes.</summary>
    static nn.Module<Tensor, Tensor> TinyModel(long seed)
    {
        var m = nn.Sequential(nn.Conv2d(1, 4, 3, padding: 1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1));
        // A private generator, not manual_seed: other test classes draw from the global one in parallel.
        var g = new Generator((ulong)seed);
        using (no_grad())
            foreach (var p in m.parameters()) p.copy_(randn(p.shape, generator: g) * 0.3);
        return m;
    }

    /// <summary>8 fixed images 1x6x6 and masks (pixel &gt; 0 is class 1), in batches of 2.</summary>
    static List<Tensor[]> TinyData(int seed = 7)
    {
        var g = new Generator((ulong)seed);
        var batches = new List<Tensor[]>();
        for (int i = 0; i < 4; i++)
        {
            var x = torch.randn(new long[] { 2, 1, 6, 6 }, generator: g);
            batches.Add([x, (x[.., 0] > 0).to(ScalarType.Int64)]); // [B x 1 x H x W], [B x H x W]
        }
        return batches;
    }

    static TrainingStep Step(nn.Module<Tensor, Tensor> model, double scale = 1.0) =>
        (batch, phase) => nn.functional.cross_entropy(model.call(batch[0]), batch[1]) * scale;

    static TrainOptions Quiet(TrainOptions o) => o with { Log = TextWriter.Null, Progress = Progress.None };

    static Dictionary<string, float[]> Weights(nn.Module m) =>
        m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float32).data<float>().ToArray());

    [Fact]
    public void OneEpoch_LossIsImageWeightedMean_AndOnlyTrainingChangesWeights()
    {
        var model = TinyModel(1);
        var opt = optim.SGD(model.parameters(), 0.1);
        // Batch sizes 1 and 3 with constant losses 2 and 4: the image-weighted mean is (1*2 + 3*4) / 4 = 3.5 (hand computed).
        List<Tensor[]> data = [[zeros(1, 1, 6, 6)], [zeros(3, 1, 6, 6)]];
        var trainer = new Trainer(model, opt, (b, p) => tensor(b[0].shape[0] == 1 ? 2.0f : 4.0f) + 0 * model.call(b[0]).sum(), device: CPU);
        var before = Weights(model);
        var val = trainer.OneEpoch(Phase.Validation, data);
        Assert.Equal(3.5, val.Loss, 6);
        Assert.Equal(4, val.NumImages);
        Assert.False(model.training);
        Assert.Equal(before["0.weight"], Weights(model)["0.weight"]);

        var train = new Trainer(model, opt, Step(model), device: CPU).OneEpoch(Phase.Training, TinyData());
        Assert.Equal(8, train.NumImages);
        Assert.True(model.training);
        Assert.NotEqual(before["3.weight"], Weights(model)["3.weight"]);
    }

    [Fact]
    public void OneEpoch_TrainingWithoutOptimizer_Throws()
    {
        var model = TinyModel(1);
        var trainer = new Trainer(model, null, Step(model), device: CPU);
        Assert.Throws<InvalidOperationException>(() => trainer.OneEpoch(Phase.Training, TinyData()));
    }

    /// <summary>Returns a scripted value as "score" for validation passes, 0 for training passes.</summary>
    sealed class ScriptedMetrics(double[] script) : DetSeg.Metrics.IMetricSet
    {
        int next;
        public Phase Last;
        public void Reset() { }
        public IReadOnlyDictionary<string, double> Values() =>
            new Dictionary<string, double> { ["score"] = Last == Phase.Validation ? script[next++] : 0 };
    }

    [Fact]
    public void Train_EarlyStopsAfterPatienceEpochsWithoutImprovement()
    {
        // best at epoch 1 (0.30); epochs 2..6 do not reach it (ties would count), so patience 5 stops after epoch 6.
        var metrics = new ScriptedMetrics([0.10, 0.30, 0.20, 0.29, 0.25, 0.10, 0.05, 0.99, 0.99]);
        var model = TinyModel(2);
        var trainer = new Trainer(model, optim.Adam(model.parameters()), (b, p) => { metrics.Last = p; return Step(model)(b, p); }, metrics, CPU);
        var log = new StringWriter();
        var result = trainer.Train(TinyData(), TinyData(9), Quiet(new TrainOptions { Monitor = "score", HigherIsBetter = true, Patience = 5, Epochs = 30 }) with { Log = log });
        Assert.Equal(StopReason.EarlyStopping, result.StopReason);
        Assert.Equal(7, result.History.Count);
        Assert.Equal(1, result.BestEpoch);
        Assert.Equal(0.30, result.BestValue, 9);
        Assert.Equal(1, result.Best!.Epoch);
        Assert.Contains("No improvement in val score for 5 epochs", log.ToString());
        Assert.Equal([true, true, false, false, false, false, false], result.History.Select(h => h.IsBest));
    }

    [Fact]
    public void Train_TiesCountAsImprovement_AndLowerIsBetterWorks()
    {
        var metrics = new ScriptedMetrics([0.5, 0.5, 0.6, 0.4, 0.7]);
        var model = TinyModel(3);
        var trainer = new Trainer(model, optim.Adam(model.parameters()), (b, p) => { metrics.Last = p; return Step(model)(b, p); }, metrics, CPU);
        var result = trainer.Train(TinyData(), TinyData(9), Quiet(new TrainOptions { Monitor = "score", HigherIsBetter = false, Patience = 2, Epochs = 5 }));
        // 0.5 best, 0.5 tie -> best (course's >=/<=), 0.6 worse, 0.4 best, 0.7 worse: completes 5 epochs.
        Assert.Equal(StopReason.Completed, result.StopReason);
        Assert.Equal([true, true, false, true, false], result.History.Select(h => h.IsBest));
        Assert.Equal(3, result.BestEpoch);
    }

    [Fact]
    public void Train_StopsOnNaNLoss_WithoutSteppingOnIt()
    {
        var model = TinyModel(4);
        int epoch = 0, batchInEpoch = 0;
        var trainer = new Trainer(model, optim.Adam(model.parameters()), (b, p) =>
        {
            var loss = Step(model)(b, p);
            if (p == Phase.Training && ++batchInEpoch == 2 && epoch == 2) return loss * double.NaN;
            return loss;
        }, null, CPU);
        Dictionary<string, float[]>? afterEpoch1 = null;
        var log = new StringWriter();
        var o = new TrainOptions { MonitorPhase = Phase.Training, Epochs = 10, Log = log, Progress = Progress.None,
            OnEpoch = e => { if (e.Epoch == 1) afterEpoch1 = Weights(model); epoch = e.Epoch + 1; batchInEpoch = 0; } };
        var result = trainer.Train(TinyData(), null, o);
        Assert.Equal(StopReason.NonFiniteLoss, result.StopReason);
        Assert.Equal(3, result.History.Count);
        Assert.True(double.IsNaN(result.History[2].Train.Loss));
        Assert.True(result.BestEpoch is 0 or 1);
        Assert.Contains("invalid loss", log.ToString());
        // Only the first batch of epoch 2 stepped: the weights moved once after epoch 1, and are finite.
        Assert.All(Weights(model).Values.SelectMany(v => v), v => Assert.True(float.IsFinite(v)));
        Assert.NotNull(afterEpoch1);
    }

    [Fact]
    public void Best_IsACopy_NotTheLiveWeights()
    {
        // The course stored model.state_dict(), which aliases the live tensors: its "best" silently became the last epoch.
        var metrics = new ScriptedMetrics([0.9, 0.1, 0.1]);
        var model = TinyModel(5);
        var trainer = new Trainer(model, optim.Adam(model.parameters(), 0.05), (b, p) => { metrics.Last = p; return Step(model)(b, p); }, metrics, CPU);
        Dictionary<string, float[]>? atBest = null;
        var result = trainer.Train(TinyData(), TinyData(9), Quiet(new TrainOptions { Monitor = "score", HigherIsBetter = true, Epochs = 3,
            OnEpoch = e => { if (e.Epoch == 0) atBest = Weights(model); } }));
        Assert.Equal(0, result.BestEpoch);
        var last = Weights(model);
        Assert.NotEqual(atBest!["0.weight"], last["0.weight"]);
        result.Best!.Restore(model);
        Assert.Equal(atBest["0.weight"], Weights(model)["0.weight"]);
        Assert.Equal(atBest["1.running_mean"], Weights(model)["1.running_mean"]);
    }

    [Fact]
    public void Resume_AfterTwoEpochs_GivesTheSameWeightsAsFourEpochs()
    {
        var o = Quiet(new TrainOptions { MonitorPhase = Phase.Training, Epochs = 4, CheckpointRoot = root });

        var full = TinyModel(11);
        var fullOpt = optim.Adam(full.parameters(), 0.01);
        var fullResult = new Trainer(full, fullOpt, Step(full), null, CPU).Train(TinyData(), null, o with { RunName = "full" });

        var part = TinyModel(11);
        new Trainer(part, optim.Adam(part.parameters(), 0.01), Step(part), null, CPU).Train(TinyData(), null, o with { RunName = "part", Epochs = 2 });
        // "Kernel restart": a new model with other initial weights, a new optimizer, a scrambled generator.
        var resumed = TinyModel(999);
        var resumedOpt = optim.Adam(resumed.parameters(), 0.01);
        torch.manual_seed(12345);
        var resumedResult = new Trainer(resumed, resumedOpt, Step(resumed), null, CPU).Resume(TinyData(), null, o with { RunName = "part" });

        Assert.Equal(4, resumedResult.History.Count);
        Assert.Equal(fullResult.History.Select(h => h.Train.Loss), resumedResult.History.Select(h => h.Train.Loss));
        var a = Weights(full);
        var b = Weights(resumed);
        Assert.Equal(a.Keys, b.Keys);
        foreach (var k in a.Keys) Assert.Equal(a[k], b[k]);
        Assert.Equal(fullResult.BestEpoch, resumedResult.BestEpoch);
        // Resuming a finished run does nothing and says so.
        var log = new StringWriter();
        var again = new Trainer(resumed, resumedOpt, Step(resumed), null, CPU).Resume(TinyData(), null, o with { RunName = "part", Log = log });
        Assert.Equal(4, again.History.Count);
        Assert.Contains("nothing to resume", log.ToString());
        foreach (var k in a.Keys) Assert.Equal(a[k], Weights(resumed)[k]);
        Assert.True(File.Exists(Path.Combine(root, "part", "best.ckpt")));
        Assert.Contains("\"history\"", File.ReadAllText(Path.Combine(root, "part", "metrics.json")));
    }

    sealed class ListDataset(List<Tensor[]> items) : DetSeg.Data.IDataset<Tensor[]>
    {
        public int Count => items.Count;
        public Tensor[] this[int index] => items[index].Select(t => t.clone()).ToArray();
    }

    static List<Tensor[]> Items() => TinyData().SelectMany(b => Enumerable.Range(0, 2).Select(i => new[] { b[0][i], b[1][i] })).ToList();

    [Fact]
    public void Resume_WithAShufflingDataLoader_ReplaysItsOrder()
    {
        var o = Quiet(new TrainOptions { MonitorPhase = Phase.Training, Epochs = 4, CheckpointRoot = root });
        DetSeg.Data.DataLoader Loader() => new(new ListDataset(Items()), batchSize: 3, shuffle: true, seed: 5, device: CPU, numWorkers: 0);

        var full = TinyModel(21);
        new Trainer(full, optim.Adam(full.parameters(), 0.01), Step(full), null, CPU).Train(Loader(), null, o with { RunName = "dl-full" });
        var part = TinyModel(21);
        new Trainer(part, optim.Adam(part.parameters(), 0.01), Step(part), null, CPU).Train(Loader(), null, o with { RunName = "dl-part", Epochs = 2 });
        var resumed = TinyModel(22);
        new Trainer(resumed, optim.Adam(resumed.parameters(), 0.01), Step(resumed), null, CPU).Resume(Loader(), null, o with { RunName = "dl-part" });

        var a = Weights(full);
        var b = Weights(resumed);
        foreach (var k in a.Keys) Assert.Equal(a[k], b[k]);
    }

    [Fact]
    public void Resume_ReplaysTheLearningRateSchedule()
    {
        var o = Quiet(new TrainOptions { MonitorPhase = Phase.Training, Epochs = 4, CheckpointRoot = root, RunName = "sched" });
        var m1 = TinyModel(3);
        var opt1 = optim.Adam(m1.parameters(), 0.1);
        var full = new Trainer(m1, opt1, Step(m1), null, CPU).Train(TinyData(), null, o with { RunName = "sched-full", Scheduler = optim.lr_scheduler.StepLR(opt1, 1, 0.5) });

        var m2 = TinyModel(3);
        var opt2 = optim.Adam(m2.parameters(), 0.1);
        new Trainer(m2, opt2, Step(m2), null, CPU).Train(TinyData(), null, o with { Epochs = 2, Scheduler = optim.lr_scheduler.StepLR(opt2, 1, 0.5) });
        var m3 = TinyModel(4);
        var opt3 = optim.Adam(m3.parameters(), 0.1);
        var resumed = new Trainer(m3, opt3, Step(m3), null, CPU).Resume(TinyData(), null, o with { Scheduler = optim.lr_scheduler.StepLR(opt3, 1, 0.5) });

        // StepLR(step 1, gamma 0.5) from 0.1: 0.1, 0.05, 0.025, 0.0125 (hand computed).
        Assert.Equal([0.1, 0.05, 0.025, 0.0125], full.History.Select(h => Math.Round(h.LearningRate, 6)));
        Assert.Equal(full.History.Select(h => Math.Round(h.LearningRate, 6)), resumed.History.Select(h => Math.Round(h.LearningRate, 6)));
        Assert.Equal(Weights(m1)["3.weight"], Weights(m3)["3.weight"]);
    }

    [Fact]
    public void Train_WithValidationMonitorButNoValidationLoader_SaysWhatToDo()
    {
        var model = TinyModel(1);
        var trainer = new Trainer(model, optim.Adam(model.parameters()), Step(model), null, CPU);
        var e = Assert.Throws<ArgumentException>(() => trainer.Train(TinyData(), null, Quiet(new TrainOptions())));
        Assert.Contains("MonitorPhase", e.Message);
    }

    [Fact]
    public void Train_UnknownMonitor_NamesTheKnownMetrics()
    {
        var model = TinyModel(1);
        var trainer = new Trainer(model, optim.Adam(model.parameters()), Step(model), null, CPU);
        var e = Assert.Throws<KeyNotFoundException>(() => trainer.Train(TinyData(), TinyData(), Quiet(new TrainOptions { Monitor = "mean_iou" })));
        Assert.Contains("mean_iou", e.Message);
        Assert.Contains("loss", e.Message);
    }
}

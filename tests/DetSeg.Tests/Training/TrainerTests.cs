using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Training;

[Collection(GlobalRng.Name)]
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
        var m = nn.Sequential(nn.Conv2d(1, 4, 3, padding: 1), new DetSeg.Runtime.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1));
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
        // Epoch 2 saw two batches (2 images each): the first stepped, the second was NaN and stopped the pass.
        var stopped = result.History[2].Train;
        Assert.Equal(4, stopped.NumImages);
        Assert.Equal(2, stopped.BatchLosses.Count);
        Assert.True(double.IsFinite(stopped.BatchLosses[0]) && double.IsNaN(stopped.BatchLosses[1]));
        // So the weights moved once after epoch 1 (not zero times, not on the NaN), and are finite.
        var final = Weights(model);
        Assert.NotEqual(afterEpoch1!["3.weight"], final["3.weight"]);
        Assert.All(final.Values.SelectMany(v => v), v => Assert.True(float.IsFinite(v)));
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

    /// <summary>y = w·x with one weight, batches of one (x, y) pair, loss (w·x − y)²: plain SGD by hand.</summary>
    static (TorchSharp.Modules.Linear model, List<Tensor[]> data) Line(double w0)
    {
        var m = nn.Linear(1, 1, hasBias: false, dtype: ScalarType.Float64);
        using (no_grad()) m.weight!.fill_(w0);
        var data = new List<Tensor[]> { new[] { tensor(new[] { 1.0 }).view(1, 1), tensor(new[] { 2.0 }).view(1, 1) },
                                        new[] { tensor(new[] { 2.0 }).view(1, 1), tensor(new[] { 4.0 }).view(1, 1) } };
        return (m, data);
    }

    static TrainingStep SquaredError(nn.Module<Tensor, Tensor> m) => (batch, phase) => (m.call(batch[0]) - batch[1]).pow(2).sum();

    [Fact]
    public void Train_WithEma_ValidatesSelectsAndRestoresTheAveragedWeights_ByHand()
    {
        var (m, data) = Line(0.0);
        var opt = optim.SGD(m.parameters(), 0.05);
        var o = Quiet(new TrainOptions { Epochs = 3, Patience = null, Ema = new EmaOptions(Decay: 0.8, Tau: 1.5) });
        var result = new Trainer(m, opt, SquaredError(m), null, CPU).Train(data, data, o);

        // the same run by hand: w ← w − lr·2x(wx − y) per batch; e ← d·e + (1 − d)·w with d = 0.8(1 − exp(−k/1.5))
        double w = 0, e = 0; int k = 0;
        var valLoss = new List<double>(); var averages = new List<double>();
        for (int epoch = 0; epoch < 3; epoch++)
        {
            foreach (var (x, y) in new[] { (1.0, 2.0), (2.0, 4.0) })
            {
                w -= 0.05 * 2 * x * (w * x - y);
                double d = 0.8 * (1 - Math.Exp(-(++k) / 1.5));
                e = d * e + (1 - d) * w;
            }
            averages.Add(e);
            valLoss.Add(((e * 1 - 2) * (e * 1 - 2) + (e * 2 - 4) * (e * 2 - 4)) / 2);   // validation sees the average
        }
        Assert.Equal(3, result.History.Count);
        for (int i = 0; i < 3; i++) Assert.Equal(valLoss[i], result.History[i].Validation!.Loss, 10);
        Assert.Equal(w, m.weight!.item<double>(), 12);                 // the live weights keep training
        Assert.Equal(2, result.BestEpoch);                              // the average still approaches 2
        result.Best!.Restore(m);
        Assert.Equal(averages[2], m.weight!.item<double>(), 12);
        Assert.True(result.Best.HasTrainingWeights);
    }

    [Fact]
    public void Resume_WithEma_ContinuesTheAverage_AndRefusesMismatchedOptions()
    {
        var o = Quiet(new TrainOptions { Epochs = 4, Patience = null, CheckpointRoot = root, Ema = new EmaOptions(Decay: 0.9, Tau: 2) });
        var (full, data) = Line(0.3);
        var fullResult = new Trainer(full, optim.SGD(full.parameters(), 0.02), SquaredError(full), null, CPU).Train(data, data, o with { RunName = "full" });

        var (part, _) = Line(0.3);
        new Trainer(part, optim.SGD(part.parameters(), 0.02), SquaredError(part), null, CPU).Train(data, data, o with { RunName = "part", Epochs = 2 });
        var (resumed, _) = Line(-5.0);
        var resumedResult = new Trainer(resumed, optim.SGD(resumed.parameters(), 0.02), SquaredError(resumed), null, CPU).Resume(data, data, o with { RunName = "part" });

        Assert.Equal(fullResult.History.Select(h => h.Validation!.Loss), resumedResult.History.Select(h => h.Validation!.Loss));
        Assert.Equal(full.weight!.item<double>(), resumed.weight!.item<double>());
        var onDisk = Checkpoint.Load(Path.Combine(root, "part", "last.ckpt"));
        Assert.True(onDisk.HasTrainingWeights);
        onDisk.Restore(resumed);
        var (check, _) = Line(0);
        Checkpoint.Load(Path.Combine(root, "full", "last.ckpt")).Restore(check);
        Assert.Equal(check.weight!.item<double>(), resumed.weight!.item<double>());   // the same average after the resume
        Assert.NotEqual(full.weight!.item<double>(), resumed.weight!.item<double>());  // …which is not the live weight

        var (other, _) = Line(0);
        var plain = o with { RunName = "part", Ema = null, Epochs = 5 };
        var ex = Assert.Throws<ArgumentException>(() => new Trainer(other, optim.SGD(other.parameters(), 0.02), SquaredError(other), null, CPU).Resume(data, data, plain));
        Assert.Contains("TrainOptions.Ema", ex.Message);
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

    /// <summary>Steps through <see cref="Step"/>, and lets a test spoil a given validation pass.</summary>
    sealed class Spoiler(nn.Module<Tensor, Tensor> model, ScriptedMetrics metrics)
    {
        public int Epoch;
        int valBatch;
        public Func<int, int, Tensor, Tensor>? OnValidation;   // (epoch, batch, loss) -> loss

        public TrainingStep Step => (b, p) =>
        {
            metrics.Last = p;
            var loss = TrainerTests.Step(model)(b, p);
            return p == Phase.Validation && OnValidation is not null ? OnValidation(Epoch, valBatch++, loss) : loss;
        };

        public void NextEpoch(EpochLog e) { Epoch = e.Epoch + 1; valBatch = 0; }
    }

    [Fact]
    public void Train_NaNValidationLoss_IsNeverBest_StopsTheRun_AndKeepsLastAtTheHealthyEpoch()
    {
        // The case: a diverged epoch whose loss is NaN but whose metric still "improves" (0.5 ≥ 0.1).
        var metrics = new ScriptedMetrics([0.1, 0.5, 0.9]);
        var model = TinyModel(6);
        var spoiler = new Spoiler(model, metrics) { OnValidation = (epoch, _, loss) => epoch == 1 ? loss * double.NaN : loss };
        var trainer = new Trainer(model, optim.Adam(model.parameters()), spoiler.Step, metrics, CPU);
        var log = new StringWriter();
        var o = Quiet(new TrainOptions { Monitor = "score", HigherIsBetter = true, Epochs = 3, CheckpointRoot = root, RunName = "nan-val",
            OnEpoch = spoiler.NextEpoch }) with { Log = log };
        var result = trainer.Train(TinyData(), TinyData(9), o);

        Assert.Equal(StopReason.NonFiniteLoss, result.StopReason);
        Assert.Equal(2, result.History.Count);
        Assert.Equal([true, false], result.History.Select(h => h.IsBest));
        Assert.Equal(0, result.BestEpoch);
        Assert.Contains("validation loss", log.ToString());
        Assert.Equal(0, Checkpoint.Load(Path.Combine(root, "nan-val", "best.ckpt")).Epoch);
        Assert.Equal(0, Checkpoint.Load(Path.Combine(root, "nan-val", "last.ckpt")).Epoch);
        // A resume does not train on from the healthy epoch into the same divergence: it says why it stopped.
        var again = new Trainer(model, optim.Adam(model.parameters()), spoiler.Step, metrics, CPU).Resume(TinyData(), TinyData(9), o);
        Assert.Equal(StopReason.NonFiniteLoss, again.StopReason);
        Assert.Equal(2, again.History.Count);
    }

    [Fact]
    public void Train_NaNBatchNormBuffer_IsNeverBestNorSaved()
    {
        // The last validation batch spoils a BatchNorm buffer after its loss was computed: every loss is finite,
        // the metric improves, but the state is NaN and must reach neither best.ckpt nor last.ckpt.
        var metrics = new ScriptedMetrics([0.1, 0.5, 0.9]);
        var model = TinyModel(7);
        var spoiler = new Spoiler(model, metrics)
        {
            OnValidation = (epoch, batch, loss) =>
            {
                if (epoch == 1 && batch == 3)
                    using (no_grad()) model.named_buffers().First(b => b.name == "1.running_mean").buffer.fill_(double.NaN);
                return loss;
            },
        };
        var trainer = new Trainer(model, optim.Adam(model.parameters()), spoiler.Step, metrics, CPU);
        var log = new StringWriter();
        var result = trainer.Train(TinyData(), TinyData(9), Quiet(new TrainOptions { Monitor = "score", HigherIsBetter = true, Epochs = 3,
            CheckpointRoot = root, RunName = "nan-buffer", OnEpoch = spoiler.NextEpoch }) with { Log = log });

        Assert.Equal(StopReason.NonFiniteLoss, result.StopReason);
        Assert.True(double.IsFinite(result.History[1].Validation!.Loss));
        Assert.Equal(0, result.BestEpoch);
        Assert.Contains("non-finite weights or buffers", log.ToString());
        var last = Checkpoint.Load(Path.Combine(root, "nan-buffer", "last.ckpt"));
        Assert.Equal(0, last.Epoch);
        var restored = TinyModel(8);
        last.Restore(restored);
        Assert.All(Weights(restored)["1.running_mean"], v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Train_EmptyTrainingSet_OrALoaderWithoutABatch_IsAnError()
    {
        var model = TinyModel(1);
        var trainer = new Trainer(model, optim.Adam(model.parameters()), Step(model), null, CPU);
        var o = Quiet(new TrainOptions { MonitorPhase = Phase.Training, Epochs = 3 });
        var e = Assert.Throws<InvalidOperationException>(() => trainer.Train(new List<Tensor[]>(), null, o));
        Assert.Contains("no batch", e.Message);
        // 3 items, batch 8, dropLast: the loader yields nothing although the dataset is not empty.
        using var loader = new DetSeg.Data.DataLoader(new ListDataset(Items().Take(3).ToList()), batchSize: 8, dropLast: true, device: CPU, numWorkers: 0);
        e = Assert.Throws<InvalidOperationException>(() => trainer.Train(loader, null, o));
        Assert.Contains("dropLast", e.Message);
        // So is a validation loader that yields nothing.
        Assert.Throws<InvalidOperationException>(() => trainer.Train(TinyData(), new List<Tensor[]>(), o with { MonitorPhase = Phase.Validation }));
    }

    [Fact]
    public void Train_RunFolderInUse_FailsFast_NamingTheProcess_AndTouchesNothing()
    {
        var model = TinyModel(1);
        var o = Quiet(new TrainOptions { MonitorPhase = Phase.Training, Epochs = 2, CheckpointRoot = root, RunName = "shared" });
        // A second run with the same name, started while the first is in its first epoch.
        Exception? second = null;
        var first = new Trainer(model, optim.Adam(model.parameters()), Step(model), null, CPU).Train(TinyData(), null, o with
        {
            OnEpoch = e =>
            {
                if (e.Epoch != 0) return;
                var other = TinyModel(2);
                second = Record.Exception(() => new Trainer(other, optim.Adam(other.parameters()), Step(other), null, CPU).Train(TinyData(), null, o));
            },
        });
        var io = Assert.IsType<IOException>(second);
        Assert.Contains(Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture), io.Message);
        Assert.Contains("shared", io.Message);
        // The second run deleted nothing: the first one's files are there, and its run completed.
        Assert.Equal(StopReason.Completed, first.StopReason);
        Assert.Equal(1, Checkpoint.Load(Path.Combine(root, "shared", "last.ckpt")).Epoch);
        // Released when the run returns: the name can be used again.
        var third = TinyModel(3);
        Assert.Equal(2, new Trainer(third, optim.Adam(third.parameters()), Step(third), null, CPU).Train(TinyData(), null, o).History.Count);
        Assert.Throws<IOException>(() => { using var held = RunLock.Acquire(Path.Combine(root, "shared")); RunLock.Acquire(Path.Combine(root, "shared")); });
    }

    sealed class CountingSink : IProgressSink
    {
        public readonly List<int?> Totals = [];
        public void Begin(string label, int? total) => Totals.Add(total);
        public void Update(int done, double meanLoss, TimeSpan elapsed) { }
        public void End(string summary) { }
    }

    [Fact]
    public void OneEpoch_ProgressKnowsTheDataLoadersBatchCount()
    {
        var model = TinyModel(1);
        using var loader = new DetSeg.Data.DataLoader(new ListDataset(Items()), batchSize: 3, device: CPU, numWorkers: 0);
        var sink = new CountingSink();
        var trainer = new Trainer(model, null, Step(model), null, CPU);
        trainer.OneEpoch(Phase.Validation, loader, progress: sink);
        var data = TinyData();   // made here: tensors made inside the trainer's per-batch scope die with the batch
        IEnumerable<Tensor[]> Lazy() { foreach (var b in data) yield return b; }
        trainer.OneEpoch(Phase.Validation, Lazy(), progress: sink);                    // a lazy sequence: no total
        Assert.Equal([3, null], sink.Totals);                                          // 8 items in batches of 3
    }
}

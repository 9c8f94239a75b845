using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Training;

public class TrainingRunTests
{
    sealed class Probe(List<string> log, string name) : IDisposable
    {
        public void Dispose() => log.Add(name);
    }

    [Fact]
    public void ANewRunOfTheSameName_ReleasesThePreviousRun_NewestFirst_AndOnlyThatName()
    {
        var log = new List<string>();
        string name = "rerun-" + Guid.NewGuid().ToString("N");
        var first = new TrainingRun(name);
        first.Own(new Probe(log, "model"));
        first.Own(new Probe(log, "loader"));
        var other = new TrainingRun(name + "-other");
        other.Own(new Probe(log, "other"));

        var second = new TrainingRun(name);     // the cell, rerun
        Assert.Equal(["loader", "model"], log);
        Assert.True(first.IsDisposed);
        Assert.False(other.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => first.Own(new Probe(log, "late")));

        second.Dispose();
        second.Dispose();                       // once only
        other.Dispose();
        Assert.Equal(["loader", "model", "other"], log);
    }

    [Fact]
    public void ReleasingARun_FreesTheModelsTensors()
    {
        var run = new TrainingRun("rerun-tensors-" + Guid.NewGuid().ToString("N"));
        var model = run.Own(torch.nn.Linear(4, 2));
        var weight = model.weight!;
        var optimizer = run.Own(torch.optim.SGD(model.parameters(), 0.1));
        Assert.False(weight.IsInvalid);
        run.Dispose();
        Assert.True(weight.IsInvalid);           // the native tensor is gone, not waiting for the GC
    }

    // What a rerun cell's old `result` variable keeps: the run's best checkpoint, weights and Adam state as bytes.
    static TrainResult ResultWithBest(nn.Module model, optim.Optimizer optimizer) => new()
    {
        History = [],
        Best = Checkpoint.Capture(model, optimizer, 0, new Dictionary<string, double> { ["val/loss"] = 0.5 }, new Dictionary<string, double> { ["best_value"] = 0.5 }),
        StopReason = StopReason.Completed,
        StopMessage = "Completed 1 epochs.",
        Options = new TrainOptions(),
    };

    // In a method of its own so that no temporary of the test's frame keeps the arrays alive (Debug builds extend lifetimes).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    static (WeakReference Weights, WeakReference AdamState) Track(Checkpoint c) => (new(c.ModelBytes), new(c.OptimizerBytes));

    [Fact]
    public void ReleasingARun_ReleasesItsResultsBestCheckpoint_ThoughTheResultIsStillReferenced()
    {
        var run = new TrainingRun("rerun-result-" + Guid.NewGuid().ToString("N"));
        var model = run.Own(torch.nn.Linear(64, 32));
        var optimizer = run.Own(torch.optim.Adam(model.parameters(), 1e-3));
        var result = run.Own(ResultWithBest(model, optimizer));
        var best = result.Best!;
        var (weights, adamState) = Track(best);
        Assert.True(weights.IsAlive);

        new TrainingRun(run.Name).Dispose();    // the cell, rerun (and that run released too)
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        Assert.Same(best, result.Best);          // the notebook's old variable still holds result and checkpoint...
        Assert.False(weights.IsAlive);           // ...but no longer the bytes (4 x 64 x 32 floats here, hundreds of MB for a U-Net)
        Assert.False(adamState.IsAlive);
        Assert.True(best.IsDisposed);
        Assert.Equal(0, result.BestEpoch);       // the figures stay readable
        Assert.Equal(0.5, result.BestValue);
        var e = Assert.Throws<ObjectDisposedException>(() => best.Restore(torch.nn.Linear(64, 32)));
        Assert.Contains("epoch 0", e.Message);
        string path = Path.Combine(Path.GetTempPath(), "detseg-released-" + Guid.NewGuid().ToString("N") + ".ckpt");
        Assert.Throws<ObjectDisposedException>(() => best.Save(path));
        Assert.False(File.Exists(path));        // nothing half-written
    }

    [Fact]
    public void ReturnFreedMemory_TrimsGlibcsArenas_OnLinux()
    {
        // The import is glibc's soname, libc.so.6; an import that failed to resolve would be swallowed (musl) and trim nothing.
        bool glibc = OperatingSystem.IsLinux() && File.Exists("/proc/self/maps")
            && File.ReadLines("/proc/self/maps").Any(l => l.EndsWith("/libc.so.6", StringComparison.Ordinal));
        Assert.Equal(glibc, TrainingRun.ReturnFreedMemory());
    }
}

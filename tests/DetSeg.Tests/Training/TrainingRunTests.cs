using DetSeg.Training;
using TorchSharp;

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
}

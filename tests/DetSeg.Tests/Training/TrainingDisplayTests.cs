using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Training;

public class TrainingDisplayTests
{
    /// <summary>Validation "score" per epoch from a script; training reports 0.</summary>
    sealed class ScriptedMetrics(double[] script) : DetSeg.Metrics.IMetricSet
    {
        int next;
        public Phase Last;
        public void Reset() { }
        public IReadOnlyDictionary<string, double> Values() =>
            new Dictionary<string, double> { ["score"] = Last == Phase.Validation ? script[next++] : 0 };
    }

    static (Trainer Trainer, List<Tensor[]> Data) Tiny(double[] script)
    {
        var g = new Generator(5);
        var model = nn.Sequential(nn.Conv2d(1, 2, 3, padding: 1));
        using (no_grad())
            foreach (var p in model.parameters()) p.copy_(randn(p.shape, generator: g) * 0.3);
        var data = Enumerable.Range(0, 2).Select(_ =>
        {
            var x = randn(new long[] { 2, 1, 4, 4 }, generator: g);
            return new[] { x, (x[.., 0] > 0).to(ScalarType.Int64) };
        }).ToList();
        var metrics = new ScriptedMetrics(script);
        var trainer = new Trainer(model, optim.SGD(model.parameters(), 0.01),
            (b, p) => { metrics.Last = p; return nn.functional.cross_entropy(model.call(b[0]), b[1]); }, metrics, CPU);
        return (trainer, data);
    }

    [Fact]
    public void Console_OneShortLinePerEpoch_BestMarked_ThenTheStopMessage()
    {
        // Scores 0.1, 0.3, 0.2, 0.25 with patience 2: best epoch 1, stop after epoch 3 (hand-traced).
        var (trainer, data) = Tiny([0.1, 0.3, 0.2, 0.25]);
        var shown = new StringWriter();
        var result = trainer.Train(data, data, new TrainOptions
        {
            Monitor = "score", HigherIsBetter = true, Patience = 2, Epochs = 10, Progress = TrainingDisplay.ForConsole(shown),
        });
        var lines = shown.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToArray();
        Assert.Equal(5, lines.Length);
        Assert.Matches(@"^epoch  0/10  train loss \d\.\d{4}  val loss \d\.\d{4}  val score 0\.1000 \*  \d+\.\d s$", lines[0]);
        Assert.Matches(@"^epoch  1/10 .* val score 0\.3000 \*  ", lines[1]);
        Assert.Matches(@"^epoch  2/10 .* val score 0\.2000    \d", lines[2]);
        Assert.Equal(result.StopMessage, lines[4]);
        Assert.StartsWith("No improvement in val score for 2 epochs", lines[4]);
        Assert.DoesNotContain("VALIDATION:", shown.ToString()); // the full figures are not printed
    }

    [Fact]
    public void PrintLog_PrintsWhatTheTrainerWritesToAnExplicitLog()
    {
        var (trainer, data) = Tiny([0.5, 0.4, 0.6]);
        var log = new StringWriter();
        var result = trainer.Train(data, data, new TrainOptions
        {
            Monitor = "score", HigherIsBetter = true, Epochs = 3, Log = log, Progress = TrainingDisplay.ForConsole(TextWriter.Null),
        });
        var printed = new StringWriter();
        result.PrintLog(printed);
        Assert.Equal(log.ToString(), printed.ToString());
        string text = printed.ToString();
        Assert.Contains("val score = 0.4000  (best 0.5000 at epoch 0, 1 epoch(s) ago)", text);
        Assert.Contains("val score = 0.6000  (new best)", text);
        Assert.Equal(3, text.Split("VALIDATION: loss=").Length - 1);
    }

    [Fact]
    public void Auto_OutsideANotebook_WritesToTheConsole_AndNoLiveOutputIsShown()
    {
        Assert.False(DetSeg.Runtime.LiveOutput.IsAvailable);
        Assert.Null(DetSeg.Runtime.LiveOutput.TryShow(id => id));
        Assert.NotNull(TrainingDisplay.Auto());
    }
}

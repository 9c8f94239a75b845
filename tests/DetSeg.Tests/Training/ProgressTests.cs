using DetSeg.Training;

namespace DetSeg.Tests.Training;

public class ProgressTests
{
    [Fact]
    public void Bar_ShowsDoneTotalLossAndTimeLeft()
    {
        // 5 of 10 batches in 10 s: 10 s left (hand computed).
        string s = Progress.Bar("Training 0", 5, 10, 0.5, TimeSpan.FromSeconds(10), width: 10);
        Assert.Equal("Training 0 [#####.....] 5/10 loss 0.5000 10s<10s", s);
        Assert.Equal("Validation 1 3 2s", Progress.Bar("Validation 1", 3, null, double.NaN, TimeSpan.FromSeconds(2)));
    }

    [Fact]
    public void ConsoleProgress_Redirected_WritesOneLinePerQuarter()
    {
        var w = new StringWriter();
        var p = new ConsoleProgress(w, interactive: false);
        p.Begin("Training 0", 8);
        for (int i = 1; i <= 8; i++) p.Update(i, 1.0, TimeSpan.FromSeconds(i));
        p.End("loss=1.0000");
        var lines = w.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        Assert.StartsWith("Training 0 [##############################] 8/8 loss 1.0000", lines[^1]);
    }

    [Fact]
    public void Auto_OutsideANotebook_IsTheConsoleBar()
    {
        Assert.Null(NotebookProgress.TryCreate());
        Assert.IsType<ConsoleProgress>(Progress.Auto());
    }

    [Fact]
    public void EpochLine_LeavesOutUnmeasuredFigures_ButAlwaysShowsTheLoss()
    {
        var train = new EpochResult(Phase.Training, 0, new Dictionary<string, double> { ["loss"] = 12.5, ["map50"] = double.NaN, ["num_images"] = 16 }, 1.0);
        Assert.Equal("loss=12.5000 num_images=16", train.ToString());
        var broken = new EpochResult(Phase.Training, 0, new Dictionary<string, double> { ["loss"] = double.NaN, ["num_images"] = 3 }, 1.0, NonFiniteLoss: true);
        Assert.Equal("loss=NaN num_images=3", broken.ToString());
        var val = new EpochResult(Phase.Validation, 0, new Dictionary<string, double> { ["loss"] = 3, ["map50"] = 0.25, ["num_images"] = 100 }, 1.0);
        Assert.Equal("loss=3.0000 map50=0.2500 num_images=100", val.ToString());
    }
}

using System.Text.Json.Nodes;
using DetSeg.Notebooks;

namespace DetSeg.Notebooks.Tests;

// A display updated in place (a progress bar, the training display) is one output: the executed notebook and
// the report keep its last frame only, at the position where it was first shown.
public class ProgressTests
{
    [Fact]
    public async Task Run_KeepsTheLastFrameOfEachUpdatedDisplay_InTheNotebookAndTheReport()
    {
        string outDir = Path.Combine(Path.GetTempPath(), "detseg-notebooks-tests", Guid.NewGuid().ToString("N"));
        string fixture = Path.Combine(AppContext.BaseDirectory, "Fixtures", "progress.ipynb");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.Equal(0, await Cli.MainAsync(["run", fixture, "--out", outDir], stdout, stderr));

        var cells = (JsonArray)JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "progress.ipynb")))!["cells"]!;
        var outputs = cells[1]!["outputs"]!.AsArray();
        Assert.Equal(3, outputs.Count);
        Assert.Equal("<div class=\"bar\">frame 5</div>", outputs[0]!["data"]!["text/html"]![0]!.GetValue<string>());
        Assert.Equal("between\n", outputs[1]!["text"]![0]!.GetValue<string>());
        Assert.Equal("<div class=\"bar2\">second done</div>", outputs[2]!["data"]!["text/html"]![0]!.GetValue<string>());

        string html = File.ReadAllText(Path.Combine(outDir, "progress.html"));
        Assert.Contains("<div class=\"bar\">frame 5</div>", html);
        Assert.Contains("<div class=\"bar2\">second done</div>", html);
        foreach (string old in new[] { "frame 0", "frame 1", "frame 4", "second 0", "second 1" })
            Assert.DoesNotContain($">{old}</div>", html);
        // Frames in output order: the first bar, the printed line, the second bar.
        Assert.True(html.IndexOf(">frame 5<", StringComparison.Ordinal) < html.IndexOf(">second done<", StringComparison.Ordinal));
    }
}

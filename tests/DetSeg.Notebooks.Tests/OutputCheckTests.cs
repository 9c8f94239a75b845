using System.Text.Json.Nodes;
using DetSeg.Notebooks;

namespace DetSeg.Notebooks.Tests;

public class OutputCheckTests
{
    const string Chart = "<div id=\"detseg-plot-1\" class=\"detseg-plot\"></div><script>draw()</script>";

    static string Notebook(params JsonObject[] outputsPerCell)
    {
        var cells = new JsonArray(outputsPerCell.Select(o => (JsonNode?)new JsonObject
        {
            ["cell_type"] = "code",
            ["source"] = new JsonArray("x"),
            ["outputs"] = o["outputs"]!.DeepClone(),
        }).ToArray());
        string path = Path.Combine(Path.GetTempPath(), "detseg-notebooks-tests", Guid.NewGuid().ToString("N") + ".ipynb");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, new JsonObject { ["cells"] = cells }.ToJsonString());
        return path;
    }

    static JsonObject Outputs(params JsonObject[] outputs) => new() { ["outputs"] = new JsonArray(outputs.Select(o => (JsonNode?)o).ToArray()) };
    static JsonObject Display(string mime, string value) => new() { ["output_type"] = "display_data", ["data"] = new JsonObject { [mime] = new JsonArray(value) } };
    static JsonObject Stream(string text) => new() { ["output_type"] = "stream", ["name"] = "stdout", ["text"] = new JsonArray(text) };

    [Fact]
    public void Passes_WhenChartsAreHtmlAndMatchTheReference()
    {
        string reference = Notebook(Outputs(Stream("hi\n")), Outputs(Display("text/html", Chart)));
        string executed = Notebook(Outputs(Stream("hi\n")), Outputs(Display("text/html", Chart)));
        Assert.Empty(OutputCheck.Problems(executed, reference));
    }

    [Fact]
    public void Fails_OnErrorOutputs_ChartsAsText_AndMissingCharts()
    {
        string reference = Notebook(Outputs(Display("text/html", Chart)), Outputs(Display("text/html", Chart)), Outputs(Stream("ok")));
        string executed = Notebook(
            Outputs(Display("text/plain", "Figure 'loss' (2 trace(s): scatter; 700x420)")),
            Outputs(),
            Outputs(new JsonObject { ["output_type"] = "error", ["ename"] = "CS1701", ["evalue"] = "assembly version" }));
        var problems = OutputCheck.Problems(executed, reference);
        Assert.Contains(problems, p => p.StartsWith("cell 1: a chart came out as text/plain"));
        Assert.Contains(problems, p => p.StartsWith("cell 2: 0 text/html chart(s), the reference run has 1"));
        Assert.Contains(problems, p => p.StartsWith("cell 3: error CS1701"));
    }

    [Fact]
    public void AnUpdatedDisplayRecordedFrameByFrame_CountsAsOneOutput()
    {
        // dotnet-repl appends each update of the training display (a live output holding a chart) as a new output.
        static string Frame(string id, int n) => $"<div class=\"detseg-training\" data-detseg-live=\"{id}\">epoch {n}{Chart}</div>";
        string reference = Notebook(Outputs(Display("text/html", Frame("a", 3)), Display("text/html", Chart)));
        string repl = Notebook(Outputs(Display("text/html", Frame("a", 1)), Display("text/html", Frame("a", 2)),
                                       Display("text/html", Frame("a", 3)), Display("text/html", Chart)));
        Assert.Empty(OutputCheck.Problems(repl, reference));
        // Two different live outputs are two charts.
        string two = Notebook(Outputs(Display("text/html", Frame("a", 1)), Display("text/html", Frame("b", 1)), Display("text/html", Chart)));
        Assert.Contains(OutputCheck.Problems(two, reference), p => p.StartsWith("cell 1: 3 text/html chart(s), the reference run has 2"));
    }
}

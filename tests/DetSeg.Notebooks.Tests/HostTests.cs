using System.Text.Json.Nodes;
using DetSeg.Notebooks;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace DetSeg.Notebooks.Tests;

// Runs the host in-process on small notebooks that need neither the library nor data.
public class HostTests
{
    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name + ".ipynb");

    static string NewTempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "detseg-notebooks-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    static async Task<(int Exit, string Out, string Err)> Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = await Cli.MainAsync(args, stdout, stderr);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    static JsonArray Cells(string ipynb) => (JsonArray)JsonNode.Parse(File.ReadAllText(ipynb))!["cells"]!;

    [Fact]
    public async Task Run_StopsAtTheFirstFailingCell_ExitsNonZeroNamingNotebookCellAndError()
    {
        string outDir = NewTempDir();
        var (exit, stdout, stderr) = await Run("run", Fixture("failing"), "--out", outDir);

        Assert.Equal(1, exit);
        Assert.Contains("failing.ipynb: cell 3 failed: System.InvalidOperationException: boom in cell three", stderr);
        Assert.Contains("before the failure", stdout);      // cell 2's output echoed live
        Assert.DoesNotContain("never printed", stdout);     // cell 4 never ran

        var cells = Cells(Path.Combine(outDir, "failing.ipynb"));
        Assert.Equal(1, cells[1]!["execution_count"]!.GetValue<int>());
        Assert.Equal("before the failure\n", cells[1]!["outputs"]![0]!["text"]![0]!.GetValue<string>());
        var error = cells[2]!["outputs"]!.AsArray().Single(o => o!["output_type"]!.GetValue<string>() == "error")!;
        Assert.Contains("boom in cell three", error["evalue"]!.GetValue<string>());
        Assert.Null(cells[3]!["execution_count"]);
        Assert.Empty(cells[3]!["outputs"]!.AsArray());

        string html = File.ReadAllText(Path.Combine(outDir, "failing.html"));
        Assert.Contains("failed at cell 3", html);
        Assert.Contains(">A notebook that fails</h1>", html); // markdown rendered
        Assert.Equal(["failing.html", "failing.ipynb"], Directory.GetFiles(outDir).Select(Path.GetFileName).Order());
    }

    [Fact]
    public async Task Run_WritesExecutedNotebookAndOfflineReport_WithProfileAndNotebookFolderAsWorkingDirectory()
    {
        string outDir = NewTempDir();
        string before = Environment.CurrentDirectory;
        var (exit, stdout, stderr) = await Run("run", Fixture("passing"), "--profile", "smoke", "--out", outDir);

        Assert.True(exit == 0, stderr + stdout);
        Assert.Equal(before, Environment.CurrentDirectory);
        Assert.Contains("cell  2/3", stdout);
        var cells = Cells(Path.Combine(outDir, "passing.ipynb"));
        string printed = string.Concat(cells[1]!["outputs"]![0]!["text"]!.AsArray().Select(l => l!.GetValue<string>()));
        Assert.Equal($"profile=smoke\n{Path.GetDirectoryName(Fixture("passing"))}\n", printed);
        var outputs = cells[2]!["outputs"]!.AsArray();
        Assert.Equal("display_data", outputs[0]!["output_type"]!.GetValue<string>());
        Assert.Contains("class=\"probe\"", outputs[0]!["data"]!["text/html"]![0]!.GetValue<string>());
        Assert.Equal("execute_result", outputs[1]!["output_type"]!.GetValue<string>());
        Assert.Equal(2, outputs[1]!["execution_count"]!.GetValue<int>());
        // The notebook's own metadata survives the round trip (VS Code reads polyglot_notebook.kernelInfo).
        var meta = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "passing.ipynb")))!["metadata"]!;
        Assert.Equal("csharp", meta["polyglot_notebook"]!["kernelInfo"]!["defaultKernelName"]!.GetValue<string>());

        string html = File.ReadAllText(Path.Combine(outDir, "passing.html"));
        Assert.Contains("<table>", html);                     // markdown rendered, tables included
        Assert.Contains("<b class=\"probe\">bold</b>", html);  // HTML output kept as HTML
        Assert.DoesNotContain("<script src=", html);          // nothing to fetch
        Assert.Contains("id=\"detseg-check\"", html);
    }

    [Fact]
    public async Task Run_ReportsACompileErrorWithItsCellNumber()
    {
        string outDir = NewTempDir();
        var (exit, _, stderr) = await Run("run", Fixture("compile-error"), "--out", outDir);
        Assert.Equal(1, exit);
        Assert.Contains("compile-error.ipynb: cell 2 failed:", stderr);
        Assert.Contains("undefinedName", stderr);
    }

    [Fact]
    public async Task Run_RejectsBadUsageWithExitTwo()
    {
        Assert.Equal(2, (await Run()).Exit);
        Assert.Equal(2, (await Run("execute")).Exit);
        var (exit, _, err) = await Run("run", Fixture("passing"), "--profile", "fast");
        Assert.Equal(2, exit);
        Assert.Contains("'fast' is not a profile", err);
        Assert.Equal(2, (await Run("run", Path.Combine(NewTempDir(), "missing.ipynb"))).Exit);
    }

    [Fact]
    public void Report_InlinesPlotlyOnlyWhenAChartIsPresent()
    {
        var doc = NotebookRunner.Parse(Fixture("passing"));
        var plain = new NotebookRun("x.ipynb", doc, [new CellRun(1, false, 0, null)], null, TimeSpan.FromSeconds(1));
        int calls = 0;
        string Js() { calls++; return "/*plotly.js*/"; }
        Assert.DoesNotContain("/*plotly.js*/", HtmlReport.Render(plain, "smoke", Js));
        Assert.Equal(0, calls);

        doc.Elements[2].Outputs.Add(new Microsoft.DotNet.Interactive.Documents.DisplayElement(
            new Dictionary<string, object> { ["text/html"] = "<div class=\"detseg-plot\"></div>" }));
        var withChart = plain with { Cells = [new CellRun(3, true, 1, TimeSpan.FromSeconds(0.5))] };
        string html = HtmlReport.Render(withChart, "smoke", Js);
        Assert.Equal(1, html.Split("/*plotly.js*/").Length - 1);
    }

    [Fact]
    public void Resolve_FindsNotebooksByPathNameOrUniquePrefix()
    {
        string root = NewTempDir();
        File.WriteAllText(Path.Combine(root, "global.json"), "{}");
        Directory.CreateDirectory(Path.Combine(root, "lib", "DetSeg"));
        Directory.CreateDirectory(Path.Combine(root, "notebooks"));
        foreach (var n in new[] { "02-seg.ipynb", "01-metrics.ipynb", "01b-data.ipynb" })
            File.WriteAllText(Path.Combine(root, "notebooks", n), "{}");
        var repo = RepoLayout.Find(Path.Combine(root, "notebooks"))!;
        Assert.Equal(["01-metrics.ipynb", "01b-data.ipynb", "02-seg.ipynb"], repo.AllNotebooks().Select(Path.GetFileName));
        Assert.EndsWith("02-seg.ipynb", repo.Resolve("02"));
        Assert.EndsWith("01-metrics.ipynb", repo.Resolve("01-metrics"));
        Assert.Contains("matches 2 notebooks", Assert.Throws<ArgumentException>(() => repo.Resolve("01")).Message);
        Assert.Throws<ArgumentException>(() => repo.Resolve("03"));
    }

    [Fact]
    public void SharedData_IsTheSharedDataFolderBesideTheClone_OrNull()
    {
        string parent = NewTempDir();
        string root = Path.Combine(parent, "clone");
        Directory.CreateDirectory(root);
        var repo = new RepoLayout(root);
        Assert.Null(repo.SharedData);
        Directory.CreateDirectory(Path.Combine(parent, "shared", "data"));
        Assert.Equal(Path.Combine(parent, "shared", "data"), repo.SharedData);
    }
}

using DetSeg.Notebooks;

namespace DetSeg.Notebooks.Tests;

// A notebook as a file-based app: the text the exporter writes, checked line by line.
public class ExportTests
{
    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name + ".ipynb");

    [Fact]
    public void Render_MakesATopLevelProgram_UsingsFirst_MarkdownAsComments_TrailingValuesShown()
    {
        string apps = Path.Combine(Path.GetTempPath(), "repo", "notebooks", "apps");
        string app = AppExport.Render(Fixture("export"), apps, Path.Combine(Path.GetTempPath(), "repo", "lib", "DetSeg", "DetSeg.csproj"));
        var lines = app.Split('\n');

        Assert.Equal("#!/usr/bin/env dotnet", lines[0]);
        Assert.Contains("#:project ../../lib/DetSeg/DetSeg.csproj", lines);
        Assert.DoesNotContain(lines, l => l.StartsWith("#r", StringComparison.Ordinal));
        // Every using directive comes before the first statement, once each; a using statement stays where it was.
        int start = Array.IndexOf(lines, "App.Start(\"export\", args);");
        Assert.True(start > 0);
        Assert.True(Array.IndexOf(lines, "using System.Text;") is > 0 and var a && a < start);
        Assert.True(Array.IndexOf(lines, "using System.Globalization;") is > 0 and var b && b < start);
        Assert.Contains("using (var w = new StringWriter()) w.Write(1);", lines);
        Assert.Contains("// # Export", lines);
        Assert.Contains("// Markdown becomes comments.", lines);
        // A trailing expression is the cell's value; one ending in ';' is not.
        Assert.Contains("App.Show(new Point(1, 2), 3);", lines);
        Assert.Contains("sb.Length;", lines);
        // A trailing Console.WriteLine is void, in the kernel as in the app: a statement, never App.Show(void).
        Assert.Contains("Console.WriteLine($\"length {sb.Length}\");", lines);
        Assert.DoesNotContain(lines, l => l.Contains("App.Show(Console.", StringComparison.Ordinal));
        // Types move after the statements; display() maps to App.Show.
        Assert.True(Array.IndexOf(lines, "record Point(int X, int Y);") > Array.IndexOf(lines, "sb.Length;"));
        Assert.Contains("void display(object? value) => App.Show(value, 0); // the notebook kernel's display()", lines);
        Assert.Contains("using App = DetSeg.Runtime.NotebookApp; // what the notebook kernel did for the cells", lines);
    }

    [Fact]
    public void Render_RejectsCellsInOtherLanguages()
    {
        string path = Path.Combine(Path.GetTempPath(), "detseg-notebooks-tests", Guid.NewGuid().ToString("N"), "fsharp.ipynb");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, File.ReadAllText(Fixture("export")).Replace("\"csharp\"", "\"fsharp\""));
        var e = Assert.Throws<InvalidDataException>(() => AppExport.Render(path, ".", "lib/DetSeg/DetSeg.csproj"));
        Assert.Contains("cell 1 is 'fsharp'", e.Message);
    }
}

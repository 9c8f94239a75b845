using System.Diagnostics;
using System.Globalization;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.CSharp;
using Microsoft.DotNet.Interactive.Documents;
using Microsoft.DotNet.Interactive.Documents.Jupyter;
using Microsoft.DotNet.Interactive.Events;
using Microsoft.DotNet.Interactive.Formatting;

namespace DetSeg.Notebooks;

/// <summary>One cell as run: its 1-based number among all cells, whether it is code, its execution count and time.</summary>
sealed record CellRun(int Number, bool IsCode, int ExecutionCount, TimeSpan? Elapsed);

/// <summary>The first failing cell of a notebook (1-based among all cells) and its error.</summary>
sealed record CellFailure(int Number, string Error)
{
    /// <summary>The error's first line, for one-line summaries.</summary>
    public string Headline => Error.Split('\n', 2)[0].Trim();
}

/// <summary>A notebook after a run: the document with outputs, per-cell timings, and the failure if any.</summary>
sealed record NotebookRun(string Path, InteractiveDocument Document, IReadOnlyList<CellRun> Cells, CellFailure? Failure, TimeSpan Elapsed)
{
    public string Name => System.IO.Path.GetFileNameWithoutExtension(Path);
    public bool Succeeded => Failure is null;
}

/// <summary>
/// Runs a notebook top to bottom in a fresh C# kernel (working directory = the notebook's folder, as in VS Code),
/// echoing each cell's progress and output to the console, and stops at the first failing cell.
/// </summary>
sealed class NotebookRunner(TextWriter console)
{
    const string CSharp = "csharp";

    static KernelInfoCollection Kernels()
    {
        var kernels = new KernelInfoCollection
        {
            new Microsoft.DotNet.Interactive.Documents.KernelInfo(CSharp, "C#", ["c#", "C#", "cs"]),
            new Microsoft.DotNet.Interactive.Documents.KernelInfo("markdown", "Markdown", ["md"]),
        };
        kernels.DefaultKernelName = CSharp;
        return kernels;
    }

    /// <summary>Reads a notebook (.ipynb).</summary>
    /// <exception cref="InvalidDataException">The file is not a notebook the parser understands.</exception>
    public static InteractiveDocument Parse(string path)
    {
        try
        {
            return Notebook.Parse(File.ReadAllText(path), Kernels());
        }
        catch (Exception e) when (e is not IOException)
        {
            throw new InvalidDataException($"{path} is not a readable .ipynb notebook: {e.Message}", e);
        }
    }

    public async Task<NotebookRun> RunAsync(string path)
    {
        var document = Parse(path);
        var cells = new List<CellRun>();
        var clock = Stopwatch.StartNew();
        string previousDirectory = Environment.CurrentDirectory;
        Environment.CurrentDirectory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        try
        {
            using var kernel = CreateKernel();
            using var echo = kernel.KernelEvents.Subscribe(Echo);
            int total = document.Elements.Count, count = 0;
            CellFailure? failure = null;
            for (int i = 0; i < total; i++)
            {
                var cell = document.Elements[i];
                int number = i + 1;
                if (IsMarkdown(cell))
                {
                    cells.Add(new CellRun(number, false, 0, null));
                    continue;
                }
                cell.Outputs.Clear();
                cell.ExecutionOrder = 0;
                if (failure is not null || string.IsNullOrWhiteSpace(cell.Contents))
                {
                    cells.Add(new CellRun(number, true, 0, null));
                    continue;
                }
                console.WriteLine($"  cell {number.ToString(CultureInfo.InvariantCulture).PadLeft(2)}/{total}  {Preview(cell.Contents)}");
                var watch = Stopwatch.StartNew();
                string? error;
                if (!string.Equals(cell.KernelName, CSharp, StringComparison.OrdinalIgnoreCase))
                {
                    error = $"This host runs C# cells only; this cell's kernel is '{cell.KernelName}'.";
                    cell.Outputs.Add(Error("Error", error, []));
                }
                else
                {
                    var result = await kernel.SendAsync(new SubmitCode(cell.Contents, CSharp));
                    error = Collect(result, cell, count + 1);
                }
                watch.Stop();
                cell.ExecutionOrder = ++count;
                cells.Add(new CellRun(number, true, count, watch.Elapsed));
                if (error is null)
                {
                    console.WriteLine($"           ok  {Seconds(watch.Elapsed)}");
                }
                else
                {
                    failure = new CellFailure(number, error);
                    console.WriteLine($"           FAILED after {Seconds(watch.Elapsed)}: {failure.Headline}");
                }
            }
            return new NotebookRun(path, document, cells, failure, clock.Elapsed);
        }
        finally
        {
            Environment.CurrentDirectory = previousDirectory;
        }
    }

    static CompositeKernel CreateKernel()
    {
        var csharp = new CSharpKernel().UseKernelHelpers().UseValueSharing();
        var kernel = new CompositeKernel { csharp };
        kernel.DefaultKernelName = csharp.Name;
        return kernel;
    }

    static bool IsMarkdown(InteractiveDocumentElement cell) =>
        string.Equals(cell.KernelName, "markdown", StringComparison.OrdinalIgnoreCase);

    // Maps the command's events to notebook outputs, in order; returns the error when the cell failed.
    static string? Collect(KernelCommandResult result, InteractiveDocumentElement cell, int executionCount)
    {
        string? error = null;
        var displays = new Dictionary<string, int>();
        foreach (var e in result.Events)
        {
            switch (e)
            {
                case StandardOutputValueProduced o:
                    AppendText(cell, "stdout", PlainText(o.FormattedValues));
                    break;
                case StandardErrorValueProduced o:
                    AppendText(cell, "stderr", PlainText(o.FormattedValues));
                    break;
                case DisplayedValueUpdated u when u.ValueId is not null && displays.TryGetValue(u.ValueId, out int at):
                    cell.Outputs[at] = new DisplayElement(Data(u.FormattedValues));
                    break;
                case ReturnValueProduced r:
                    var value = new ReturnValueElement { ExecutionOrder = executionCount };
                    foreach (var (mime, text) in Data(r.FormattedValues)) value.Data[mime] = text;
                    cell.Outputs.Add(value);
                    break;
                case ErrorProduced p:
                    cell.Outputs.Add(Error("Error", p.Message, []));
                    break;
                case DisplayEvent d and not DisplayedValueUpdated:
                    if (d.ValueId is not null) displays[d.ValueId] = cell.Outputs.Count;
                    cell.Outputs.Add(new DisplayElement(Data(d.FormattedValues)));
                    break;
                case CommandFailed f:
                    error = f.Exception?.ToString() ?? f.Message;
                    string name = f.Exception?.GetType().Name ?? "Error";
                    cell.Outputs.Add(Error(name, f.Exception?.Message ?? f.Message, (f.Exception?.StackTrace ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries)));
                    break;
            }
        }
        return error;
    }

    // ErrorElement's constructor takes the value (message) first and the name second.
    static ErrorElement Error(string name, string message, string[] stackTrace) => new(message, name, stackTrace);

    static Dictionary<string, object> Data(IEnumerable<FormattedValue> values) =>
        values.Where(v => !v.SuppressDisplay).GroupBy(v => v.MimeType).ToDictionary(g => g.Key, g => (object)g.First().Value);

    static string PlainText(IEnumerable<FormattedValue> values) =>
        values.FirstOrDefault(v => v.MimeType == "text/plain")?.Value ?? values.FirstOrDefault()?.Value ?? "";

    static void AppendText(InteractiveDocumentElement cell, string stream, string text)
    {
        if (cell.Outputs.Count > 0 && cell.Outputs[^1] is TextElement last && last.Name == stream)
            cell.Outputs[^1] = new TextElement(last.Text + text, stream);
        else
            cell.Outputs.Add(new TextElement(text, stream));
    }

    // Live progress: a cell's printed lines as they come (a training loop's epochs), and a note per display.
    void Echo(KernelEvent e)
    {
        switch (e)
        {
            case StandardOutputValueProduced o:
                Write("│ ", PlainText(o.FormattedValues));
                break;
            case StandardErrorValueProduced o:
                Write("! ", PlainText(o.FormattedValues));
                break;
            case DisplayedValueUpdated u:
                // A training display's status line (epoch done, best so far, why it stopped), once per change.
                if (TrainingStatus.Match(u.FormattedValues.FirstOrDefault(v => v.MimeType == "text/html")?.Value ?? "") is { Success: true } m
                    && m.Groups[1].Value is var status && status != lastStatus && !status.StartsWith("starting", StringComparison.Ordinal))
                {
                    lastStatus = status;
                    Write("│ ", System.Net.WebUtility.HtmlDecode(status));
                }
                break;
            case DisplayedValueProduced or ReturnValueProduced:
                console.WriteLine($"           │ [{string.Join(", ", ((DisplayEvent)e).FormattedValues.Select(v => v.MimeType))} output]");
                break;
        }
    }

    // DetSeg.Training.TrainingDisplay's frame starts with its status line.
    static readonly System.Text.RegularExpressions.Regex TrainingStatus =
        new("^<div class=\"detseg-training\"[^>]*><div[^>]*>([^<]*)</div>", System.Text.RegularExpressions.RegexOptions.Compiled);
    string lastStatus = "";

    void Write(string prefix, string text)
    {
        foreach (string line in text.TrimEnd('\n', '\r').Split('\n'))
            console.WriteLine("           " + prefix + line.TrimEnd('\r'));
    }

    static string Preview(string code)
    {
        string line = code.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0) ?? "";
        return line.Length > 70 ? line[..67] + "..." : line;
    }

    internal static string Seconds(TimeSpan t) => t.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture) + " s";
}

using System.Diagnostics;
using DetSeg.Runtime;

namespace DetSeg.Notebooks;

/// <summary>Command line of the notebook host; exit 0 when every notebook ran, 1 when one failed, 2 on bad usage.</summary>
static class Cli
{
    public const string Usage = """
usage: DetSeg.Notebooks run [notebook ...] [--profile smoke|cpu|gpu] [--out DIR]
       DetSeg.Notebooks verify EXECUTED.ipynb [--reference REFERENCE.ipynb]

  notebook   a path, a name in notebooks/ (01-metrics), or a unique prefix (01); default: every
             notebooks/*.ipynb in name order
  --profile  sets DETSEG_PROFILE for the notebooks (default: gpu with CUDA, else cpu)
  --out      where executed notebooks and HTML reports go (default: reports/ in the repository)

Each notebook runs top to bottom in a fresh C# kernel (working directory: the notebook's folder) and
stops at its first failing cell; the others still run. Cells are numbered from 1 in file order, markdown
cells included. Data come from DETSEG_DATA when set, else from a shared/data folder beside the clone when
there is one, else from the DetSeg cache (downloaded, md5-checked). Writes DIR/<name>.ipynb (with outputs) and DIR/<name>.html (self-contained, opens offline).

verify checks a notebook executed by another kernel (dotnet-repl, VS Code): no error outputs, every chart
as text/html, and, given this host's run of the same notebook, as many charts per cell.
""";

    static string DataRoot() =>
        Environment.GetEnvironmentVariable("DETSEG_DATA") is { Length: > 0 } d ? Path.GetFullPath(d) : "the DetSeg cache (DETSEG_DATA, else ~/.cache/detseg)";

    public static async Task<int> MainAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            stdout.Write(Usage);
            return args.Length == 0 ? 2 : 0;
        }
        if (args[0] == "verify") return Verify(args[1..], stdout, stderr);
        if (args[0] != "run")
        {
            stderr.WriteLine($"unknown command '{args[0]}'\n");
            stderr.Write(Usage);
            return 2;
        }

        string? profile = null, outDir = null;
        var names = new List<string>();
        for (int i = 1; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--profile" when i + 1 < args.Length:
                    profile = args[++i].Trim().ToLowerInvariant();
                    if (profile is not ("smoke" or "cpu" or "gpu"))
                    {
                        stderr.WriteLine($"--profile '{args[i]}' is not a profile: use smoke, cpu or gpu.");
                        return 2;
                    }
                    break;
                case "--out" when i + 1 < args.Length:
                    outDir = Path.GetFullPath(args[++i]);
                    break;
                case var a when a.StartsWith('-'):
                    stderr.WriteLine($"unknown or incomplete option '{a}'\n");
                    stderr.Write(Usage);
                    return 2;
                default:
                    names.Add(args[i]);
                    break;
            }
        }

        var repo = RepoLayout.Find(Environment.CurrentDirectory);
        List<string> notebooks;
        try
        {
            if (repo is null && names.Count == 0)
                throw new ArgumentException("Cannot find the repository (a folder with global.json and notebooks/) above " + Environment.CurrentDirectory);
            notebooks = names.Count == 0 ? [.. repo!.AllNotebooks()] : [.. names.Select(n => repo?.Resolve(n) ?? Path.GetFullPath(n))];
            if (notebooks.Count == 0) throw new ArgumentException($"No notebooks in {repo!.Notebooks}.");
            foreach (var nb in notebooks.Where(n => !File.Exists(n))) throw new ArgumentException($"No such notebook: {nb}");
        }
        catch (ArgumentException e)
        {
            stderr.WriteLine(e.Message);
            return 2;
        }
        outDir ??= repo?.Reports ?? Path.GetFullPath("reports");
        string library = repo?.Library ?? "";

        if (profile is not null) Environment.SetEnvironmentVariable("DETSEG_PROFILE", profile);
        string shownProfile = Environment.GetEnvironmentVariable("DETSEG_PROFILE") is { Length: > 0 } p ? p : "default";
        stdout.WriteLine($"DetSeg notebooks: {notebooks.Count} notebook(s), profile {shownProfile}, reports in {outDir}");
        // Data: DETSEG_DATA when set; else ../shared/data beside the clone when there is one (offline build machines,
        // as the tests and CI do); else the library's default cache, filled by checked downloads.
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("DETSEG_DATA")) && repo?.SharedData is string shared)
        {
            Environment.SetEnvironmentVariable("DETSEG_DATA", shared);
            stdout.WriteLine($"data: {shared} (the shared/data beside this clone; set DETSEG_DATA to use another folder)");
        }
        else
            stdout.WriteLine($"data: {DataRoot()} (missing files are downloaded there and checked by md5)");

        string? plotly = null;
        string PlotlyJs() => plotly ??= PlotlyScript.Load(library);
        var runner = new NotebookRunner(stdout);
        var results = new List<(string Name, NotebookRun? Run, string? Error)>();
        var clock = Stopwatch.StartNew();
        foreach (string path in notebooks)
        {
            stdout.WriteLine($"\n▶ {Path.GetRelativePath(Environment.CurrentDirectory, path)}");
            try
            {
                var run = await runner.RunAsync(path);
                string name = run.Name;
                AtomicFile.WriteAllText(Path.Combine(outDir, name + ".ipynb"), IpynbWriter.Write(File.ReadAllText(path), run));
                AtomicFile.WriteAllText(Path.Combine(outDir, name + ".html"), HtmlReport.Render(run, shownProfile, PlotlyJs));
                results.Add((name, run, null));
                if (!run.Succeeded)
                    stderr.WriteLine($"error: {path}: cell {run.Failure!.Number} failed: {run.Failure.Headline}");
            }
            catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
            {
                results.Add((Path.GetFileNameWithoutExtension(path), null, e.Message));
                stderr.WriteLine($"error: {path}: {e.Message}");
            }
            // Notebooks leave tensors in kernel variables; let the next one start clean.
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            using var self = Process.GetCurrentProcess();
            stdout.WriteLine($"  (host memory after this notebook: {self.WorkingSet64 / (1 << 20)} MB)");
        }

        stdout.WriteLine($"\nSummary ({NotebookRunner.Seconds(clock.Elapsed)}):");
        foreach (var (name, run, error) in results)
        {
            string line = run switch
            {
                null => $"ERROR   {error}",
                { Succeeded: true } => $"ok      {run.Cells.Count(c => c.Elapsed is not null)} code cells in {NotebookRunner.Seconds(run.Elapsed)}",
                _ => $"FAILED  cell {run.Failure!.Number}: {run.Failure.Headline}",
            };
            stdout.WriteLine($"  {name.PadRight(28)} {line}");
        }
        return results.All(r => r.Run is { Succeeded: true }) ? 0 : 1;
    }

    static int Verify(string[] args, TextWriter stdout, TextWriter stderr)
    {
        string? executed = null, reference = null;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--reference" && i + 1 < args.Length) reference = args[++i];
            else if (!args[i].StartsWith('-') && executed is null) executed = args[i];
            else
            {
                stderr.Write(Usage);
                return 2;
            }
        }
        if (executed is null || !File.Exists(executed) || reference is not null && !File.Exists(reference))
        {
            stderr.WriteLine($"verify: no such notebook: {(executed is null || !File.Exists(executed) ? executed ?? "(none given)" : reference)}");
            return 2;
        }
        var problems = OutputCheck.Problems(executed, reference);
        foreach (string p in problems) stderr.WriteLine($"{executed}: {p}");
        if (problems.Count > 0) return 1;
        stdout.WriteLine($"{executed}: no errors, every chart is text/html{(reference is null ? "" : " and matches " + reference)}");
        return 0;
    }
}

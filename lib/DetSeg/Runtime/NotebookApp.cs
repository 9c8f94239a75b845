namespace DetSeg.Runtime;

/// <summary>
/// What the notebook kernel does for a notebook's cells, for the file-based apps that
/// <c>DetSeg.Notebooks export</c> writes (<c>notebooks/apps/</c>): profile and data folder as the host sets them,
/// and a cell's value shown — a chart as a self-contained HTML file, anything else printed.
/// </summary>
public static class NotebookApp
{
    static string name = "app", charts = ".";
    static int count;

    /// <summary>Sets the profile from --profile and the data folder as the notebook host does, and the working
    /// directory to notebooks/ (as VS Code does for a notebook), so paths in the cells mean the same.</summary>
    public static void Start(string appName, string[] args)
    {
        name = appName;
        for (int i = 0; i + 1 < args.Length; i++)
            if (args[i] == "--profile") Environment.SetEnvironmentVariable("DETSEG_PROFILE", args[i + 1]);
        string here = AppContext.GetData("EntryPointFileDirectoryPath") as string ?? Path.Combine(Environment.CurrentDirectory, "notebooks", "apps");
        charts = Path.Combine(here, "charts");
        Environment.CurrentDirectory = Path.GetDirectoryName(Path.GetFullPath(here))!;
        // Data as the host finds them: DETSEG_DATA, else shared/data beside the clone, else the cache (downloads).
        string shared = Path.GetFullPath(Path.Combine(Environment.CurrentDirectory, "..", "..", "shared", "data"));
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("DETSEG_DATA")) && Directory.Exists(shared))
            Environment.SetEnvironmentVariable("DETSEG_DATA", shared);
    }

    /// <summary>A cell's value: a chart goes to a self-contained HTML file, anything else is printed.</summary>
    public static void Show(object? value, int cell)
    {
        if (value is DetSeg.Plots.Figure figure)
        {
            string path = Path.Combine(charts, $"{name}-cell{cell:00}-{++count}.html");
            figure.SaveHtml(path);
            Console.WriteLine($"[chart] {(figure.Title.Length > 0 ? figure.Title : "figure")}: {Path.GetRelativePath(Environment.CurrentDirectory, path)}");
        }
        else if (value is not null)
            Console.WriteLine(value);
    }
}

namespace DetSeg.Tests;

/// <summary>Locates the repository and the optional real data in <c>../shared/data</c>.</summary>
public static class TestPaths
{
    /// <summary>The repository root (the folder holding global.json).</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The real data folder, or null on a fresh clone without it (real-data tests then skip).</summary>
    public static string? SharedData
    {
        get
        {
            string? env = Environment.GetEnvironmentVariable("DETSEG_DATA");
            if (!string.IsNullOrEmpty(env) && Directory.Exists(env)) return env;
            string candidate = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "data"));
            return Directory.Exists(candidate) ? candidate : null;
        }
    }

    /// <summary>A fresh empty temporary folder.</summary>
    public static string NewTempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "detseg-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "global.json"))) return dir.FullName;
        throw new InvalidOperationException("Cannot find the repository root (global.json) above " + AppContext.BaseDirectory);
    }
}

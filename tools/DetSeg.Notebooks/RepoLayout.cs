namespace DetSeg.Notebooks;

/// <summary>Where things are: the repository root (the folder with global.json), notebooks/, reports/ and the built library.</summary>
sealed record RepoLayout(string Root)
{
    /// <summary>The notebooks folder.</summary>
    public string Notebooks => Path.Combine(Root, "notebooks");

    /// <summary>The default reports folder.</summary>
    public string Reports => Path.Combine(Root, "reports");

    /// <summary>The folder of the library build the notebooks' setup cell references (Debug, like the setup cell).</summary>
    public string Library => Path.Combine(Root, "lib", "DetSeg", "bin", "Debug", "net10.0");

    /// <summary>
    /// The <c>shared/data</c> folder beside the clone (<c>../shared/data</c>), where this project's build machines keep
    /// the real datasets offline (the tests and CI read it too); null when there is none.
    /// </summary>
    public string? SharedData
    {
        get
        {
            string dir = Path.GetFullPath(Path.Combine(Root, "..", "shared", "data"));
            return Directory.Exists(dir) ? dir : null;
        }
    }

    /// <summary>Finds the repository (global.json beside lib/DetSeg) above <paramref name="start"/>, then above this program; or null.</summary>
    public static RepoLayout? Find(string start)
    {
        foreach (string from in new[] { start, AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(from); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "global.json")) && Directory.Exists(Path.Combine(dir.FullName, "lib", "DetSeg")))
                    return new RepoLayout(dir.FullName);
        return null;
    }

    /// <summary>Every notebook in notebooks/, in name order (01-…, 01b-…, 02-…).</summary>
    public IReadOnlyList<string> AllNotebooks() =>
        Directory.Exists(Notebooks)
            ? Directory.GetFiles(Notebooks, "*.ipynb").Order(StringComparer.Ordinal).ToList()
            : [];

    /// <summary>
    /// Resolves a notebook argument: a path, a name in notebooks/ with or without <c>.ipynb</c>, or a unique
    /// prefix such as <c>01</c>.
    /// </summary>
    /// <exception cref="ArgumentException">No notebook, or more than one, matches.</exception>
    public string Resolve(string arg)
    {
        if (File.Exists(arg)) return Path.GetFullPath(arg);
        foreach (string candidate in new[] { Path.Combine(Notebooks, arg), Path.Combine(Notebooks, arg + ".ipynb") })
            if (File.Exists(candidate)) return candidate;
        var matches = AllNotebooks().Where(p => Path.GetFileName(p).StartsWith(arg, StringComparison.OrdinalIgnoreCase)).ToList();
        return matches.Count switch
        {
            1 => matches[0],
            0 => throw new ArgumentException($"No notebook '{arg}': not a file, and nothing in {Notebooks} starts with it."),
            _ => throw new ArgumentException($"'{arg}' matches {matches.Count} notebooks: {string.Join(", ", matches.Select(Path.GetFileName))}."),
        };
    }
}

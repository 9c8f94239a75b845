namespace DetSeg.Interop;

/// <summary>A weights file does not fit a model: the keys and shapes that differ, named as in the file (PyTorch names).</summary>
public sealed class StateDictMismatchException : Exception
{
    /// <summary>Keys the model has and the file lacks, with the model's shape.</summary>
    public IReadOnlyList<(string Key, long[] Shape)> Missing { get; }
    /// <summary>Keys the file has and the model lacks, with the file's shape.</summary>
    public IReadOnlyList<(string Key, long[] Shape)> Unexpected { get; }
    /// <summary>Keys in both whose shapes differ.</summary>
    public IReadOnlyList<(string Key, long[] FileShape, long[] ModelShape)> ShapeMismatches { get; }

    internal StateDictMismatchException(string path, string model,
        IReadOnlyList<(string, long[])> missing, IReadOnlyList<(string, long[])> unexpected, IReadOnlyList<(string, long[], long[])> shapes)
        : base(Describe(path, model, missing, unexpected, shapes))
        => (Missing, Unexpected, ShapeMismatches) = (missing, unexpected, shapes);

    const int Listed = 20;

    static string Describe(string path, string model, IReadOnlyList<(string Key, long[] Shape)> missing,
        IReadOnlyList<(string Key, long[] Shape)> unexpected, IReadOnlyList<(string Key, long[] File, long[] Model)> shapes)
    {
        var lines = new List<string> { $"Weights '{path}' do not fit {model}:" };
        if (shapes.Count > 0)
            lines.Add($"  {shapes.Count} shape mismatch(es) (file vs model): " + List(shapes.Select(s => $"{s.Key} {S(s.File)} vs {S(s.Model)}")));
        if (missing.Count > 0)
            lines.Add($"  {missing.Count} missing key(s) (in the model, not in the file): " + List(missing.Select(m => $"{m.Key} {S(m.Shape)}")));
        if (unexpected.Count > 0)
            lines.Add($"  {unexpected.Count} unexpected key(s) (in the file, not in the model): " + List(unexpected.Select(u => $"{u.Key} {S(u.Shape)}")));
        return string.Join(Environment.NewLine, lines);
    }

    static string List(IEnumerable<string> items)
    {
        var all = items.ToList();
        var shown = string.Join(", ", all.Take(Listed));
        return all.Count > Listed ? $"{shown}, … and {all.Count - Listed} more" : shown;
    }

    internal static string S(long[] shape) => "[" + string.Join(" x ", shape) + "]";
}

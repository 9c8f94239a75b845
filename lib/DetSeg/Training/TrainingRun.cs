namespace DetSeg.Training;

/// <summary>
/// What one training run owns — model, optimizer, loaders — released as a whole when the next run of the same
/// name starts, or on <see cref="Dispose"/>. For notebook cells that users rerun to retrain: a rerun keeps the
/// previous cell's variables reachable (the kernel keeps every submission), so without this each rerun would
/// keep another model, optimizer state and loader workers alive.
/// </summary>
/// <example>
/// <code>
/// var run = new TrainingRun("unet");                        // disposes what the previous "unet" run owned
/// var model = run.Own(new SemanticSegmentor(3, 2, 16).to(device));
/// var optimizer = run.Own(torch.optim.Adam(model.parameters(), lr: 1e-3));
/// var trainLoader = run.Own(new DataLoader(trainSet, batchSize: 4, shuffle: true, seed: 0));
/// </code>
/// </example>
public sealed class TrainingRun : IDisposable
{
    static readonly Dictionary<string, TrainingRun> Current = [];
    readonly List<IDisposable> owned = [];

    /// <summary>The run's name: a new run with the same name releases this one.</summary>
    public string Name { get; }

    /// <summary>Whether <see cref="Dispose"/> has run (also when a newer run of the same name released it).</summary>
    public bool IsDisposed { get; private set; }

    /// <summary>Starts a run, first disposing the previous run with the same <paramref name="name"/>, if any.</summary>
    public TrainingRun(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
        TrainingRun? previous;
        lock (Current)
        {
            Current.Remove(name, out previous);
            Current[name] = this;
        }
        previous?.Dispose();
    }

    /// <summary>Adds <paramref name="item"/> to what this run releases, and returns it.</summary>
    /// <exception cref="ObjectDisposedException">The run was already released.</exception>
    public T Own<T>(T item) where T : IDisposable
    {
        ArgumentNullException.ThrowIfNull(item);
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        owned.Add(item);
        return item;
    }

    /// <summary>Disposes what the run owns, newest first (loaders before the model they feed).</summary>
    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        for (int i = owned.Count - 1; i >= 0; i--) owned[i].Dispose();
        owned.Clear();
        lock (Current)
            if (Current.TryGetValue(Name, out var r) && ReferenceEquals(r, this)) Current.Remove(Name);
    }
}

namespace DetSeg.Training;

/// <summary>
/// What one training run owns — model, optimizer, loaders, the <see cref="TrainResult"/> with its in-memory best
/// checkpoint — released as a whole when the next run of the same name starts, or on <see cref="Dispose"/>. For
/// notebook cells that users rerun to retrain: a rerun keeps the previous cell's variables reachable (the kernel
/// keeps every submission), so without this each rerun would keep another model, optimizer state and best
/// checkpoint (weights and Adam state as bytes, about three times the model) alive for the kernel's life.
/// </summary>
/// <example>
/// <code>
/// var run = new TrainingRun("unet");                        // disposes what the previous "unet" run owned
/// var model = run.Own(new SemanticSegmentor(3, 2, 16).to(device));
/// var optimizer = run.Own(torch.optim.Adam(model.parameters(), lr: 1e-3));
/// var trainLoader = run.Own(new DataLoader(trainSet, batchSize: 4, shuffle: true, seed: 0));
/// var result = run.Own(trainer.Train(trainLoader, valLoader, options));   // its best checkpoint goes with the run
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

    /// <summary>Disposes what the run owns, newest first (loaders before the model they feed), then hands the freed
    /// memory back to the system (see <see cref="ReturnFreedMemory"/>).</summary>
    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        for (int i = owned.Count - 1; i >= 0; i--) owned[i].Dispose();
        owned.Clear();
        ReturnFreedMemory();
        lock (Current)
            if (Current.TryGetValue(Name, out var r) && ReferenceEquals(r, this)) Current.Remove(Name);
    }

    /// <summary>
    /// Collects the managed heap with its large-object heap compacted and, on glibc, trims malloc's arenas: what a
    /// released run leaves behind goes back to the system instead of staying in the process's resident set.
    /// </summary>
    /// <returns>Whether glibc's <c>malloc_trim</c> ran (false off Linux or on another C library).</returns>
    /// <remarks>Measured on the rerun fixture (bench/notebooks/rerun-training.ipynb): a run's best checkpoints are
    /// large-object-heap arrays that a plain collection frees but does not compact, and tensors freed on loader worker
    /// threads leave their pages in glibc's per-thread arenas; without this the kernel's RSS stepped up by tens of MB
    /// on the first rerun. Trimming only when the next run starts (an earlier version) came too late: the RSS read after
    /// a cell is the run's peak, which is what a user sees; <see cref="Trainer"/> therefore calls this at the end of every run.</remarks>
    public static bool ReturnFreedMemory()
    {
        System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect();
        GC.WaitForPendingFinalizers(); // tensors only the finalizer would free
        GC.Collect();
        if (!OperatingSystem.IsLinux()) return false;
        try { return MallocTrim(0) >= 0; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; } // musl, not glibc
    }

    [System.Runtime.InteropServices.DllImport("libc.so.6", EntryPoint = "malloc_trim")]
    static extern int MallocTrim(nuint pad);
}

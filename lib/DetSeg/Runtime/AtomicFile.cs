using System.Diagnostics;
using System.Text;

namespace DetSeg.Runtime;

/// <summary>
/// The one way DetSeg (and its notebook host, which compiles this file in) writes a file that a reader must never
/// see half-written: a uniquely named temp file in the destination's folder, flushed to disk, then moved over the
/// destination in one rename. On any failure the temp file is removed and the destination keeps its old content.
/// </summary>
/// <remarks>
/// Temp names are <c>&lt;name&gt;.tmp-&lt;pid&gt;-&lt;guid&gt;</c>: unique per write (two threads or processes writing the same
/// file never share one), in the same folder (so the move is a rename on one file system, never a copy), and
/// carrying the writer's process id, so a later write can tell the leftovers of a killed process from a write in
/// progress and delete them (<see cref="RemoveOrphans"/>).
/// </remarks>
internal static class AtomicFile
{
    const string TempTag = ".tmp-";

    /// <summary>Writes <paramref name="text"/> as UTF-8 without a byte-order mark.</summary>
    public static void WriteAllText(string path, string text) =>
        Write(path, s => { var bytes = new UTF8Encoding(false).GetBytes(text); s.Write(bytes); });

    /// <summary>Writes <paramref name="bytes"/>.</summary>
    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, s => s.Write(bytes));

    /// <summary>Lets <paramref name="write"/> fill a temp file, then moves it over <paramref name="path"/>.</summary>
    /// <param name="path">The destination; its folder is created when missing.</param>
    /// <param name="write">Writes the whole content; an exception leaves the destination as it was.</param>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        RemoveOrphans(full);
        string temp = TempPathFor(full);
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>Moves a finished, already flushed file (a download's <c>.part</c>) over <paramref name="destination"/> in one rename.</summary>
    public static void MoveIntoPlace(string finished, string destination) => File.Move(finished, destination, overwrite: true);

    /// <summary>A fresh temp path for <paramref name="full"/> in the same folder.</summary>
    internal static string TempPathFor(string full) => $"{full}{TempTag}{Environment.ProcessId}-{Guid.NewGuid():N}";

    /// <summary>
    /// Deletes temp files of <paramref name="full"/> left by processes that no longer run (killed mid-write).
    /// Temps of live processes are kept: they may be writes in progress.
    /// </summary>
    /// <param name="full">The destination whose temps are looked for.</param>
    /// <param name="tag">What follows the file name in a temp's name, before <c>&lt;pid&gt;-</c>.</param>
    /// <returns>The paths deleted.</returns>
    public static IReadOnlyList<string> RemoveOrphans(string full, string tag = TempTag)
    {
        string? dir = Path.GetDirectoryName(full);
        if (dir is null || !Directory.Exists(dir)) return [];
        var removed = new List<string>();
        string prefix = Path.GetFileName(full) + tag;
        foreach (string file in Directory.EnumerateFiles(dir, prefix + "*"))
        {
            string rest = Path.GetFileName(file)[prefix.Length..];
            int dash = rest.IndexOf('-');
            if (dash <= 0 || !int.TryParse(rest.AsSpan(0, dash), out int pid)) continue;   // not one of ours
            if (IsAlive(pid)) continue;
            try
            {
                File.Delete(file);
                removed.Add(file);
            }
            catch (IOException) { }              // another cleaner got there first
            catch (UnauthorizedAccessException) { }
        }
        return removed;
    }

    /// <summary>Whether process <paramref name="pid"/> runs (this one counts as running).</summary>
    internal static bool IsAlive(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException) { return false; }        // no such process
        catch (InvalidOperationException) { return false; }
    }
}

namespace DetSeg.Interop;

/// <summary>
/// Writes a file through a temporary sibling and a rename, so a crash or an exception never leaves a
/// half-written weights file under the final name.
/// </summary>
/// <remarks>The one place interop writes files: switch it to the library's shared atomic writer when that lands.</remarks>
internal static class AtomicWrite
{
    /// <summary>Creates the folder if needed, runs <paramref name="write"/> on a temporary file, then moves it over <paramref name="path"/>.</summary>
    public static void ToFile(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string tmp = full + $".tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }
}

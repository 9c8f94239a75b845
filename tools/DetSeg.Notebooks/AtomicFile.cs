using System.Text;

namespace DetSeg.Notebooks;

/// <summary>Writes files so that a reader never sees half of one: a temp file in the same folder, then a move.</summary>
static class AtomicFile
{
    public static void WriteAllText(string path, string text)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        string temp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        try
        {
            File.WriteAllText(temp, text, new UTF8Encoding(false));
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}

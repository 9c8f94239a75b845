using System.Diagnostics;
using System.Globalization;

namespace DetSeg.Training;

/// <summary>
/// An exclusive lock on a run folder for the lifetime of one <see cref="Trainer.Train"/> or <see cref="Trainer.Resume"/>:
/// two runs with the same name would otherwise delete each other's files and write checkpoints in turn.
/// </summary>
/// <remarks>
/// The lock is the OS's exclusive lock on <c>.lock</c> (held through an open <see cref="FileStream"/> with
/// <see cref="FileShare.None"/>; the OS drops it when the process dies, so a crashed run leaves nothing stale).
/// The holder's process id and name go to <c>.lock.owner</c>, a separate file, because the locked one cannot be read
/// by others.
/// </remarks>
public sealed class RunLock : IDisposable
{
    /// <summary>The lock file's name inside the run folder.</summary>
    public const string FileName = ".lock";

    readonly FileStream stream;

    RunLock(FileStream stream, string directory) => (this.stream, Directory) = (stream, directory);

    /// <summary>The locked run folder.</summary>
    public string Directory { get; }

    /// <summary>Takes the lock on <paramref name="directory"/> (created if missing) or fails at once.</summary>
    /// <exception cref="IOException">Another run holds the folder; the message names its process.</exception>
    public static RunLock Acquire(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        System.IO.Directory.CreateDirectory(directory);
        string path = Path.Combine(directory, FileName), owner = path + ".owner";
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            string holder = File.Exists(owner) ? File.ReadAllText(owner).Trim() : "unknown (it has not written .lock.owner yet)";
            throw new IOException($"The run folder '{Path.GetFullPath(directory)}' is in use by another run: process {holder}. " +
                                  "Two runs with the same RunName would overwrite each other's checkpoints: wait for it to finish, stop it, or choose another RunName.", e);
        }
        using (var self = Process.GetCurrentProcess())
            Runtime.AtomicFile.WriteAllText(owner, string.Create(CultureInfo.InvariantCulture, $"{Environment.ProcessId} ({self.ProcessName}), since {DateTime.UtcNow:yyyy-MM-dd HH:mm:ss} UTC"));
        return new RunLock(stream, directory);
    }

    /// <summary>Releases the lock.</summary>
    public void Dispose() => stream.Dispose();
}

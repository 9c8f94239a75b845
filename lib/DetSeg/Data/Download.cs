using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using DetSeg.Runtime;

namespace DetSeg.Data;

/// <summary>Raised when data is missing and cannot be downloaded; the message says where to put the files.</summary>
public sealed class DataUnavailableException(string message, Exception? inner = null) : IOException(message, inner);

/// <summary>
/// Downloads with a progress line, md5 verification, resumption and an atomic move into place: a file at the
/// destination is always whole and, when an md5 is given, the right one.
/// </summary>
/// <remarks>
/// The bytes go to <c>&lt;destination&gt;.part</c>, held under an exclusive lock while a download runs (a second
/// process downloading the same file fails at once rather than writing into it). A <c>.part</c> left by a killed or
/// cut-off download is resumed with an HTTP <c>Range</c> request on the next call; a server that ignores the range
/// restarts it from the first byte. Only when the whole file is there and its md5 matches is it renamed into place.
/// </remarks>
public static class Download
{
    /// <summary>The HTTP timeout per request.</summary>
    public static TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>The suffix of a download in progress (or one to resume).</summary>
    public const string PartSuffix = ".part";

    /// <summary>Makes sure <paramref name="destination"/> exists and, when <paramref name="md5"/> is given, has that md5:
    /// a file already there with another md5 is deleted and fetched again. Tries each URL in turn, resuming a
    /// <c>.part</c> file left by an earlier attempt, checks the md5 and only then moves the file into place.</summary>
    /// <param name="destination">The final file path.</param>
    /// <param name="urls">Mirrors, tried in order.</param>
    /// <param name="md5">Expected md5 (hex), or null to skip the check.</param>
    /// <param name="progress">Progress lines (null: standard error).</param>
    /// <returns>The full path of the destination.</returns>
    /// <exception cref="InvalidDataException">A download completed but its md5 differs (the download is deleted);
    /// the message names the URL, expected and actual md5.</exception>
    /// <exception cref="DataUnavailableException">No URL could be reached; the message says where to put the file by hand.</exception>
    /// <exception cref="IOException">Another process is downloading the same file right now.</exception>
    public static string EnsureFile(string destination, IReadOnlyList<string> urls, string? md5, TextWriter? progress = null)
    {
        string full = Path.GetFullPath(destination);
        progress ??= Console.Error;
        if (File.Exists(full))
        {
            if (md5 is null) return full;
            string existing = Md5Of(full);
            if (string.Equals(existing, md5, StringComparison.OrdinalIgnoreCase)) return full;
            // A truncated or wrong file left in place would fail every later run the same way.
            File.Delete(full);
            progress.WriteLine($"{full} had md5 {existing}, expected {md5}: deleted, downloading it again.");
        }
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        RemoveOrphans(full);
        string part = full + PartSuffix;
        FileStream stream;
        try
        {
            stream = new FileStream(part, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (File.Exists(part))
        {
            throw new IOException($"Another process is downloading {full} (its {part} is locked). Wait for it, or stop it and run again.", e);
        }
        var failures = new List<string>();
        try
        {
            foreach (var url in urls)
            {
                try
                {
                    bool resumed = stream.Length > 0;
                    string actual = Fetch(url, stream, progress);
                    if (md5 is not null && !string.Equals(actual, md5, StringComparison.OrdinalIgnoreCase) && resumed)
                    {
                        // The kept prefix may belong to another version of the file: one fresh attempt decides.
                        progress.WriteLine($"{full}: md5 {actual} after resuming, expected {md5}; downloading it again from the start.");
                        stream.SetLength(0);
                        actual = Fetch(url, stream, progress);
                    }
                    if (md5 is not null && !string.Equals(actual, md5, StringComparison.OrdinalIgnoreCase))
                    {
                        stream.SetLength(0);
                        throw new InvalidDataException($"Checksum mismatch for {url}: expected md5 {md5}, got {actual}. The download was deleted; nothing was put at {full}.");
                    }
                    stream.Flush(flushToDisk: true);
                    stream.Dispose();
                    AtomicFile.MoveIntoPlace(part, full);
                    return full;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
                {
                    failures.Add($"{url}: {e.Message}");
                }
            }
        }
        finally
        {
            bool empty = stream.CanSeek && stream.Length == 0;
            stream.Dispose();
            if (empty && File.Exists(part)) File.Delete(part);
        }
        string kept = File.Exists(part) ? $" The {new FileInfo(part).Length:N0} bytes received are kept in {part} and the next attempt resumes from there." : "";
        throw new DataUnavailableException(
            $"Cannot download {Path.GetFileName(full)} ({string.Join("; ", failures)}).{kept} " +
            $"Offline? Put the file at {full} yourself (md5 {md5 ?? "not checked"}), or point {DataPaths.EnvVar} at a folder holding it.");
    }

    /// <summary>The md5 (lower-case hex) of a file.</summary>
    public static string Md5Of(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(MD5.HashData(f));
    }

    /// <summary>Deletes leftovers of killed writes next to <paramref name="full"/>: atomic-writer temps of dead processes
    /// and the <c>.part-&lt;pid&gt;-&lt;guid&gt;</c> files of this downloader's earlier versions. A plain <c>.part</c> is kept: it is resumed.</summary>
    static void RemoveOrphans(string full)
    {
        AtomicFile.RemoveOrphans(full);
        AtomicFile.RemoveOrphans(full, ".part-");
    }

    /// <summary>Appends the rest of <paramref name="url"/> to <paramref name="part"/> (from its current length) and returns the md5 of the whole file.</summary>
    static string Fetch(string url, FileStream part, TextWriter progress)
    {
        long offset = part.Length;
        using var http = new HttpClient { Timeout = Timeout };
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (offset > 0) request.Headers.Range = new RangeHeaderValue(offset, null);
        using var response = http.Send(request, HttpCompletionOption.ResponseHeadersRead);
        if (offset > 0 && response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            // The part is as long as the file or longer (another version): start again.
            part.SetLength(0);
            return Fetch(url, part, progress);
        }
        response.EnsureSuccessStatusCode();
        if (offset > 0 && (response.StatusCode != HttpStatusCode.PartialContent || response.Content.Headers.ContentRange?.From != offset))
            offset = 0;   // the server sent the whole file: it replaces the part
        part.SetLength(offset);
        using var md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        var buffer = new byte[1 << 16];
        part.Position = 0;
        int n;
        while (part.Position < offset && (n = part.Read(buffer, 0, (int)Math.Min(buffer.Length, offset - part.Position))) > 0)
            md5.AppendData(buffer, 0, n);
        long? remaining = response.Content.Headers.ContentLength;
        long? total = remaining + offset;
        if (offset > 0) progress.WriteLine($"Resuming {url} at {offset >> 10} KiB.");
        using (var input = response.Content.ReadAsStream())
        {
            long done = offset, lastReport = offset;
            while ((n = input.Read(buffer)) > 0)
            {
                part.Write(buffer, 0, n);
                md5.AppendData(buffer, 0, n);
                done += n;
                if (done - lastReport >= 1 << 20 || (total is long t && done == t))
                {
                    lastReport = done;
                    progress.Write(total is long all
                        ? $"\rDownloading {url}: {done >> 10} / {all >> 10} KiB ({100.0 * done / Math.Max(1, all):F0} %)"
                        : $"\rDownloading {url}: {done >> 10} KiB");
                }
            }
            part.Flush(flushToDisk: true);
            if (total is long expected && done != expected)
                throw new IOException($"{url}: connection closed after {done} of {expected} bytes.");
        }
        progress.WriteLine();
        return Convert.ToHexStringLower(md5.GetHashAndReset());
    }
}

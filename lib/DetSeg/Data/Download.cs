using System.Net.Http;
using System.Security.Cryptography;

namespace DetSeg.Data;

/// <summary>Raised when data is missing and cannot be downloaded; the message says where to put the files.</summary>
public sealed class DataUnavailableException(string message, Exception? inner = null) : IOException(message, inner);

/// <summary>Downloads with a progress line, md5 verification and an atomic move into place.</summary>
public static class Download
{
    /// <summary>The HTTP timeout per request.</summary>
    public static TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Makes sure <paramref name="destination"/> exists: when absent, tries each URL in turn, writes to a
    /// temporary file next to it, checks the md5 and only then moves it into place.</summary>
    /// <param name="destination">The final file path.</param>
    /// <param name="urls">Mirrors, tried in order.</param>
    /// <param name="md5">Expected md5 (hex), or null to skip the check.</param>
    /// <param name="progress">Progress lines (null: standard error).</param>
    /// <exception cref="InvalidDataException">A download completed but its md5 differs (the partial file is deleted);
    /// the message names the URL, expected and actual md5.</exception>
    /// <exception cref="DataUnavailableException">No URL could be reached; the message says where to put the file by hand.</exception>
    public static string EnsureFile(string destination, IReadOnlyList<string> urls, string? md5, TextWriter? progress = null)
    {
        if (File.Exists(destination)) return destination;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(destination))!);
        progress ??= Console.Error;
        var failures = new List<string>();
        foreach (var url in urls)
        {
            string temp = destination + $".part-{Environment.ProcessId}-{Guid.NewGuid():N}";
            try
            {
                string actual = Fetch(url, temp, progress);
                if (md5 is not null && !string.Equals(actual, md5, StringComparison.OrdinalIgnoreCase))
                    throw new InvalidDataException($"Checksum mismatch for {url}: expected md5 {md5}, got {actual}. The download was deleted.");
                File.Move(temp, destination, overwrite: true);
                return destination;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
            {
                failures.Add($"{url}: {e.Message}");
            }
            finally
            {
                if (File.Exists(temp)) File.Delete(temp);
            }
        }
        throw new DataUnavailableException(
            $"Cannot download {Path.GetFileName(destination)} ({string.Join("; ", failures)}). " +
            $"Offline? Put the file at {destination} yourself (md5 {md5 ?? "not checked"}), or point {Runtime.DataPaths.EnvVar} at a folder holding it.");
    }

    static string Fetch(string url, string temp, TextWriter progress)
    {
        using var http = new HttpClient { Timeout = Timeout };
        using var response = http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead).GetAwaiter().GetResult();
        response.EnsureSuccessStatusCode();
        long? total = response.Content.Headers.ContentLength;
        using var md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        using (var input = response.Content.ReadAsStream())
        using (var output = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
        {
            var buffer = new byte[1 << 16];
            long done = 0, lastReport = 0;
            int n;
            while ((n = input.Read(buffer)) > 0)
            {
                output.Write(buffer, 0, n);
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
            if (total is long expected && done != expected)
                throw new IOException($"{url}: connection closed after {done} of {expected} bytes.");
            output.Flush(flushToDisk: true);
        }
        progress.WriteLine();
        return Convert.ToHexStringLower(md5.GetHashAndReset());
    }
}

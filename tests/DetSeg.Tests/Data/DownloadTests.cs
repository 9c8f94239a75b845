using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using DetSeg.Data;

namespace DetSeg.Tests.Data;

public class DownloadTests
{
    /// <summary>Serves <paramref name="body"/> at http://127.0.0.1:port/file on a background thread.</summary>
    static (HttpListener Listener, string Url) Serve(byte[] body)
    {
        for (int attempt = 0; ; attempt++)
        {
            int port;
            using (var probe = new TcpListener(IPAddress.Loopback, 0)) { probe.Start(); port = ((IPEndPoint)probe.LocalEndpoint).Port; }
            var listener = new HttpListener();
            listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            try { listener.Start(); }
            catch (HttpListenerException) when (attempt < 5) { continue; }
            _ = Task.Run(async () =>
            {
                while (listener.IsListening)
                {
                    try
                    {
                        var ctx = await listener.GetContextAsync();
                        ctx.Response.ContentLength64 = body.Length;
                        await ctx.Response.OutputStream.WriteAsync(body);
                        ctx.Response.Close();
                    }
                    catch (Exception) { return; }
                }
            });
            return (listener, $"http://127.0.0.1:{port}/file");
        }
    }

    [Fact]
    public void EnsureFile_VerifiesMd5_AndMovesIntoPlace()
    {
        byte[] body = Enumerable.Range(0, 5000).Select(i => (byte)i).ToArray();
        string md5 = Convert.ToHexStringLower(MD5.HashData(body));
        var (listener, url) = Serve(body);
        using var _ = listener;
        string dest = Path.Combine(TestPaths.NewTempDir(), "sub", "data.bin");
        Download.EnsureFile(dest, ["http://127.0.0.1:1/unreachable", url], md5, TextWriter.Null);
        Assert.Equal(body, File.ReadAllBytes(dest));
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(dest)!));   // no temp file left
    }

    [Fact]
    public void EnsureFile_ChecksumMismatch_DeletesAndNamesUrlAndBothSums()
    {
        byte[] body = [1, 2, 3];
        var (listener, url) = Serve(body);
        using var _ = listener;
        string dir = TestPaths.NewTempDir();
        string dest = Path.Combine(dir, "data.bin");
        var e = Assert.Throws<InvalidDataException>(() => Download.EnsureFile(dest, [url], "00000000000000000000000000000000", TextWriter.Null));
        Assert.Contains(url, e.Message);
        Assert.Contains("00000000000000000000000000000000", e.Message);
        Assert.Contains(Convert.ToHexStringLower(MD5.HashData(body)), e.Message);
        Assert.Empty(Directory.GetFiles(dir));
    }

    [Fact]
    public void EnsureFile_Offline_SaysWhereToPutTheFile()
    {
        string dest = Path.Combine(TestPaths.NewTempDir(), "t10k.gz");
        var e = Assert.Throws<DataUnavailableException>(() => Download.EnsureFile(dest, ["http://127.0.0.1:1/x"], "abc", TextWriter.Null));
        Assert.Contains(dest, e.Message);
        Assert.Contains("DETSEG_DATA", e.Message);
    }
}

using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace DetSeg.Tests.Data;

/// <summary>
/// An HTTP server on 127.0.0.1 (a free port) that serves one body the way a test tells it to: whole, honouring
/// <c>Range: bytes=N-</c> with 206, cut off after some bytes (the connection is reset), or failing with a status.
/// It records every request's Range header.
/// </summary>
public sealed class LocalHttpServer : IDisposable
{
    readonly HttpListener listener;

    /// <summary>The body served.</summary>
    public byte[] Body { get; set; }
    /// <summary>Reset the connection after this many body bytes of the next response (null: send it all).</summary>
    public int? CutAfter { get; set; }
    /// <summary>Answer every request with this status and no body (null: serve the body).</summary>
    public int? FailWith { get; set; }
    /// <summary>Honour Range requests with 206 Partial Content (false: always send the whole body with 200).</summary>
    public bool HonourRange { get; set; } = true;
    /// <summary>The Range header of each request received ("" when none), in order.</summary>
    public ConcurrentQueue<string> Ranges { get; } = new();
    /// <summary>The URL of the file.</summary>
    public string Url { get; }

    public LocalHttpServer(byte[] body)
    {
        Body = body;
        for (int attempt = 0; ; attempt++)
        {
            int port;
            using (var probe = new TcpListener(IPAddress.Loopback, 0)) { probe.Start(); port = ((IPEndPoint)probe.LocalEndpoint).Port; }
            listener = new HttpListener();
            listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            try { listener.Start(); }
            catch (HttpListenerException) when (attempt < 5) { continue; }
            Url = $"http://127.0.0.1:{port}/file.bin";
            break;
        }
        _ = Task.Run(Loop);
    }

    async Task Loop()
    {
        while (listener.IsListening)
        {
            HttpListenerContext ctx;
            try { ctx = await listener.GetContextAsync(); }
            catch (Exception) { return; }
            try { await Answer(ctx); }
            catch (Exception) { /* the client went away */ }
        }
    }

    async Task Answer(HttpListenerContext ctx)
    {
        string range = ctx.Request.Headers["Range"] ?? "";
        Ranges.Enqueue(range);
        var res = ctx.Response;
        if (FailWith is int status)
        {
            res.StatusCode = status;
            res.Close();
            return;
        }
        long from = 0;
        if (HonourRange && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
        {
            from = long.Parse(range["bytes=".Length..^1]);
            if (from >= Body.Length)
            {
                res.StatusCode = 416;
                res.Headers["Content-Range"] = $"bytes */{Body.Length}";
                res.Close();
                return;
            }
            res.StatusCode = 206;
            res.Headers["Content-Range"] = $"bytes {from}-{Body.Length - 1}/{Body.Length}";
        }
        var payload = Body.AsMemory((int)from);
        res.ContentLength64 = payload.Length;
        if (CutAfter is int cut)
        {
            CutAfter = null;
            await res.OutputStream.WriteAsync(payload[..Math.Min(cut, payload.Length)]);
            await res.OutputStream.FlushAsync();
            res.Abort();   // the connection drops mid-body
            return;
        }
        await res.OutputStream.WriteAsync(payload);
        res.Close();
    }

    public void Dispose()
    {
        listener.Stop();
        listener.Close();
    }
}

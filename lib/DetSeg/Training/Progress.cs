using System.Diagnostics;
using System.Net;

namespace DetSeg.Training;

/// <summary>Where a pass over a loader reports its progress. Pluggable: pass your own to <see cref="TrainOptions.Progress"/>.</summary>
public interface IProgressSink
{
    /// <summary>A pass starts. <paramref name="total"/> is the number of batches when the loader knows it.</summary>
    void Begin(string label, int? total);

    /// <summary>After each batch: batches done, the running mean loss and the time since <see cref="Begin"/>.</summary>
    void Update(int done, double meanLoss, TimeSpan elapsed);

    /// <summary>The pass ended; <paramref name="summary"/> is its one-line result.</summary>
    void End(string summary);
}

/// <summary>Progress sinks: a text bar for consoles, an updating HTML display for notebooks, or none.</summary>
public static class Progress
{
    /// <summary>Reports nothing.</summary>
    public static IProgressSink None { get; } = new NullProgress();

    /// <summary>
    /// The sink for this process: <see cref="NotebookProgress"/> inside a .NET Interactive kernel (detected by
    /// the <c>Microsoft.DotNet.Interactive</c> assembly being loaded), else <see cref="ConsoleProgress"/>.
    /// </summary>
    public static IProgressSink Auto() =>
        NotebookProgress.TryCreate() ?? (IProgressSink)new ConsoleProgress(Console.Out, !Console.IsOutputRedirected);

    /// <summary>Renders <c>[#####.....] 12/34 loss 0.4321 3s&lt;6s</c>; total unknown gives no bar and no ETA.</summary>
    public static string Bar(string label, int done, int? total, double meanLoss, TimeSpan elapsed, int width = 30)
    {
        string loss = double.IsNaN(meanLoss) ? "" : $" loss {meanLoss:0.0000}";
        if (total is not int t || t <= 0)
            return $"{label} {done}{loss} {Clock(elapsed)}";
        int filled = (int)Math.Round(width * Math.Min(1.0, done / (double)t));
        var left = done > 0 ? TimeSpan.FromTicks(elapsed.Ticks / done * Math.Max(0, t - done)) : TimeSpan.Zero;
        string bar = width > 0 ? $" [{new string('#', filled)}{new string('.', width - filled)}]" : "";
        return $"{label}{bar} {done}/{t}{loss} {Clock(elapsed)}<{Clock(left)}";
    }

    static string Clock(TimeSpan s) => s.TotalHours >= 1 ? $"{(int)s.TotalHours}h{s.Minutes:00}m" : s.TotalMinutes >= 1 ? $"{(int)s.TotalMinutes}m{s.Seconds:00}s" : $"{s.TotalSeconds:0}s";

    sealed class NullProgress : IProgressSink
    {
        public void Begin(string label, int? total) { }
        public void Update(int done, double meanLoss, TimeSpan elapsed) { }
        public void End(string summary) { }
    }
}

/// <summary>A text progress bar: redrawn in place (<c>\r</c>) on a terminal and cleared at the end; one line per quarter when output is redirected.</summary>
public sealed class ConsoleProgress(TextWriter writer, bool interactive) : IProgressSink
{
    string label = "";
    int? total;
    int lastQuarter;
    readonly Stopwatch sinceDraw = new();

    /// <inheritdoc/>
    public void Begin(string label, int? total)
    {
        (this.label, this.total, lastQuarter) = (label, total, 0);
        sinceDraw.Restart();
    }

    /// <inheritdoc/>
    public void Update(int done, double meanLoss, TimeSpan elapsed)
    {
        if (interactive)
        {
            // Redraw at most 10 times a second: console writes are slow next to a tiny model's step.
            if (sinceDraw.ElapsedMilliseconds < 100 && done != total) return;
            sinceDraw.Restart();
            writer.Write("\r" + Progress.Bar(label, done, total, meanLoss, elapsed));
            writer.Flush();
        }
        else if (total is int t && t > 0 && done * 4 / t > lastQuarter)
        {
            lastQuarter = done * 4 / t;
            writer.WriteLine(Progress.Bar(label, done, total, meanLoss, elapsed));
        }
    }

    /// <summary>Clears the bar on a terminal; the summary itself is the caller's to log (the trainer prints it per epoch).</summary>
    public void End(string summary)
    {
        if (!interactive) return;
        writer.Write("\r\u001b[K");
        writer.Flush();
    }
}

/// <summary>
/// An HTML progress bar that updates in place in a .NET Interactive notebook (one output per pass, see
/// <see cref="Runtime.LiveOutput"/>); its last frame keeps batches done/total, the time taken and the summary.
/// </summary>
public sealed class NotebookProgress : IProgressSink
{
    Runtime.LiveOutput? shown;
    string label = "";
    int? total;
    int done;
    TimeSpan elapsed;
    readonly Stopwatch sinceDraw = new();

    NotebookProgress() { }

    /// <summary>A notebook sink when this code runs in a cell of a .NET Interactive kernel, else null.</summary>
    public static NotebookProgress? TryCreate() => Runtime.LiveOutput.IsAvailable ? new NotebookProgress() : null;

    /// <inheritdoc/>
    public void Begin(string label, int? total)
    {
        (this.label, this.total, done, elapsed) = (label, total, 0, TimeSpan.Zero);
        shown = Runtime.LiveOutput.TryShow(id => Render(id, null));
        sinceDraw.Restart();
    }

    /// <inheritdoc/>
    public void Update(int done, double meanLoss, TimeSpan elapsed)
    {
        (this.done, this.elapsed) = (done, elapsed);
        if (sinceDraw.ElapsedMilliseconds < 500 && done != total) return;
        sinceDraw.Restart();
        shown?.Update(Render(shown.Id, null, meanLoss));
    }

    /// <inheritdoc/>
    public void End(string summary) => shown?.Update(Render(shown.Id, summary));

    string Render(string id, string? summary, double meanLoss = double.NaN) =>
        Runtime.LiveOutput.Frame(id, Html(label, done, total, elapsed, meanLoss, summary), "detseg-progress");

    /// <summary>A bar as HTML: <c>&lt;progress&gt;</c>, then done/total, the running loss and times; with a
    /// summary (the pass ended) the bar is full and the summary follows the count and the time taken.</summary>
    internal static string Html(string label, int done, int? total, TimeSpan elapsed, double meanLoss, string? summary)
    {
        double pct = summary is not null ? 100 : total is int t && t > 0 ? Math.Min(100, 100.0 * done / t) : 0;
        string text = summary is null
            ? Progress.Bar(label, done, total, meanLoss, elapsed, 0)
            : $"{label} {done}{(total is int n ? "/" + n : "")} in {elapsed.TotalSeconds:0.0}s · {summary}";
        return $"<div style=\"font-family:monospace\"><progress value=\"{pct:0}\" max=\"100\" style=\"width:240px\"></progress> {WebUtility.HtmlEncode(text)}</div>";
    }
}

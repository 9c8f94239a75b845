using System.Diagnostics;
using System.Net;
using System.Reflection;

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
/// An HTML progress bar that updates in place in a .NET Interactive notebook. Found by reflection, so the
/// library needs no reference to the notebook packages.
/// </summary>
public sealed class NotebookProgress : IProgressSink
{
    readonly MethodInfo display;
    readonly Func<string, object> html;
    object? shown;
    MethodInfo? update;
    string label = "";
    int? total;
    readonly Stopwatch sinceDraw = new();

    NotebookProgress(MethodInfo display, Func<string, object> html) => (this.display, this.html) = (display, html);

    /// <summary>A notebook sink when a .NET Interactive kernel is loaded in this process, else null.</summary>
    public static NotebookProgress? TryCreate()
    {
        var assemblies = AppDomain.CurrentDomain.GetAssemblies();
        var kernel = assemblies.FirstOrDefault(a => a.GetName().Name == "Microsoft.DotNet.Interactive")?.GetType("Microsoft.DotNet.Interactive.Kernel");
        var display = kernel?.GetMethods(BindingFlags.Public | BindingFlags.Static)
            .FirstOrDefault(m => m.Name == "display" && m.GetParameters().Length == 2);
        if (display is null) return null;
        // HtmlString renders as raw HTML; a plain string with the text/html MIME type is the fallback.
        var htmlString = assemblies.Select(a => a.GetType("Microsoft.AspNetCore.Html.HtmlString")).FirstOrDefault(t => t is not null);
        Func<string, object> html = htmlString is null ? s => s : s => Activator.CreateInstance(htmlString, s)!;
        return new NotebookProgress(display, html);
    }

    /// <inheritdoc/>
    public void Begin(string label, int? total)
    {
        (this.label, this.total) = (label, total);
        shown = display.Invoke(null, [html(Render(0, double.NaN, TimeSpan.Zero, null)), new[] { "text/html" }]);
        update = shown?.GetType().GetMethod("Update", [typeof(object)]);
        sinceDraw.Restart();
    }

    /// <inheritdoc/>
    public void Update(int done, double meanLoss, TimeSpan elapsed)
    {
        if (sinceDraw.ElapsedMilliseconds < 500 && done != total) return;
        sinceDraw.Restart();
        update?.Invoke(shown, [html(Render(done, meanLoss, elapsed, null))]);
    }

    /// <inheritdoc/>
    public void End(string summary) =>
        update?.Invoke(shown, [html(Render(total ?? 0, double.NaN, TimeSpan.Zero, summary))]);

    string Render(int done, double meanLoss, TimeSpan elapsed, string? summary)
    {
        string text = WebUtility.HtmlEncode(summary is null ? Progress.Bar(label, done, total, meanLoss, elapsed, 0) : $"{label}: {summary}");
        double pct = total is int t && t > 0 ? Math.Min(100, 100.0 * done / t) : 0;
        if (summary is not null) pct = 100;
        return $"<div style=\"font-family:monospace\"><progress value=\"{pct:0}\" max=\"100\" style=\"width:240px\"></progress> {text}</div>";
    }
}

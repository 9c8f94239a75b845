using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using DetSeg.Plots;

namespace DetSeg.Training;

/// <summary>
/// Told by <see cref="Trainer.Train"/> and <see cref="Trainer.Resume"/> about the run as a whole, when the
/// run's progress sink (<see cref="TrainOptions.Progress"/>) implements it. A sink that does replaces the
/// per-epoch log on the console (unless <see cref="TrainOptions.Log"/> is set).
/// </summary>
public interface ITrainingObserver
{
    /// <summary>The run starts; <paramref name="history"/> holds the epochs done before a resume (else empty).</summary>
    void RunStarted(TrainOptions options, IReadOnlyList<EpochLog> history);

    /// <summary>An epoch ended; <paramref name="bestEpoch"/> and <paramref name="bestValue"/> are the best so far.</summary>
    void EpochEnded(EpochLog epoch, int bestEpoch, double bestValue);

    /// <summary>The run ended (also after an early stop or an invalid loss).</summary>
    void RunEnded(TrainResult result);
}

/// <summary>
/// The default view of a training run. In a notebook: one output that updates in place — the batch bar while
/// a pass runs, a compact table (epoch, training loss, validation loss, the monitored metric, a mark on the best
/// epoch, seconds) and the loss and metric curves redrawn after every epoch; its last frame is the finished
/// run. Elsewhere: one short line per epoch (and a bar redrawn in place on a terminal). Every figure of every
/// epoch stays in <see cref="TrainResult"/> and <c>metrics.json</c>; <see cref="TrainResult.PrintLog"/> prints
/// the course's full log.
/// </summary>
public sealed class TrainingDisplay : IProgressSink, ITrainingObserver
{
    readonly TextWriter? console;
    readonly IProgressSink? bar;
    readonly bool notebook;
    readonly Stopwatch sinceDraw = new();
    readonly List<EpochLog> history = [];
    Runtime.LiveOutput? live;
    TrainOptions options = new();
    string barHtml = "", status = "", chartHtml = "";
    int bestEpoch = -1;
    string label = "";
    int? total;

    /// <summary>A display that writes one line per epoch to <paramref name="console"/> (with <paramref name="bar"/>
    /// for batches; null for none), or, with <paramref name="console"/> null, draws a live notebook output.</summary>
    TrainingDisplay(TextWriter? console, IProgressSink? bar)
    {
        (this.console, this.bar, notebook) = (console, bar, console is null);
    }

    /// <summary>The live notebook output inside a .NET Interactive cell, else one line per epoch on the console.</summary>
    public static TrainingDisplay Auto() => Runtime.LiveOutput.IsAvailable ? new TrainingDisplay(null, null) : ForConsole(Console.Out, !Console.IsOutputRedirected);

    /// <summary>One line per epoch to <paramref name="writer"/>; on a terminal (<paramref name="interactive"/>) also a batch bar redrawn in place.</summary>
    public static TrainingDisplay ForConsole(TextWriter writer, bool interactive = false)
    {
        ArgumentNullException.ThrowIfNull(writer);
        return new TrainingDisplay(writer, interactive ? new ConsoleProgress(writer, true) : null);
    }

    /// <inheritdoc/>
    public void RunStarted(TrainOptions options, IReadOnlyList<EpochLog> history)
    {
        this.options = options;
        this.history.Clear();
        this.history.AddRange(history);
        bestEpoch = history.LastOrDefault(h => h.IsBest)?.Epoch ?? -1;
        status = history.Count > 0 ? $"resumed after epoch {history[^1].Epoch}" : "starting";
        if (notebook)
        {
            if (history.Count > 0) chartHtml = Curves();
            live = Runtime.LiveOutput.TryShow(Frame);
            sinceDraw.Restart();
        }
    }

    /// <inheritdoc/>
    public void Begin(string label, int? total)
    {
        (this.label, this.total) = (label, total);
        bar?.Begin(label, total);
        if (!notebook) return;
        barHtml = NotebookProgress.Html(label, 0, total, TimeSpan.Zero, double.NaN, null);
        Redraw(force: true);
    }

    /// <inheritdoc/>
    public void Update(int done, double meanLoss, TimeSpan elapsed)
    {
        bar?.Update(done, meanLoss, elapsed);
        if (!notebook || sinceDraw.ElapsedMilliseconds < 1000) return;
        barHtml = NotebookProgress.Html(label, done, total, elapsed, meanLoss, null);
        Redraw(force: false);
    }

    /// <inheritdoc/>
    public void End(string summary) => bar?.End(summary);

    /// <inheritdoc/>
    public void EpochEnded(EpochLog epoch, int bestEpoch, double bestValue)
    {
        history.Add(epoch);
        this.bestEpoch = bestEpoch;
        if (!notebook)
        {
            console!.WriteLine(Line(epoch));
            return;
        }
        barHtml = "";
        status = $"epoch {epoch.Epoch + 1} of {options.Epochs} done; best {MonitorName} {Format(bestValue)} at epoch {bestEpoch}";
        chartHtml = Curves();
        Redraw(force: true);
    }

    /// <inheritdoc/>
    public void RunEnded(TrainResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        if (!notebook)
        {
            console!.WriteLine(result.StopMessage);
            return;
        }
        barHtml = "";
        status = WebUtility.HtmlEncode(result.StopMessage);
        Redraw(force: true);
    }

    string MonitorName => $"{(options.MonitorPhase == Phase.Training ? "train" : "val")} {options.Monitor}";

    /// <summary>The console's line for one epoch, e.g. <c>epoch  3/30  train loss 0.3312  val loss 0.3511  val mean_iou 0.7012 *  12.3 s</c>.</summary>
    public string Line(EpochLog e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var s = new StringBuilder($"epoch {e.Epoch.ToString(CultureInfo.InvariantCulture).PadLeft(2)}/{options.Epochs}  train loss {Format(e.Train.Loss)}");
        if (e.Validation is not null) s.Append($"  val loss {Format(e.Validation.Loss)}");
        if (options.Monitor != "loss") s.Append($"  {MonitorName} {Format(Monitored(e))}");
        s.Append(e.IsBest ? " *" : "  ");
        s.Append("  ").Append(Seconds(e).ToString("0.0", CultureInfo.InvariantCulture)).Append(" s");
        return s.ToString();
    }

    double Monitored(EpochLog e) =>
        (options.MonitorPhase == Phase.Training ? e.Train : e.Validation)?.Metrics.GetValueOrDefault(options.Monitor, double.NaN) ?? double.NaN;

    static double Seconds(EpochLog e) => e.Train.Seconds + (e.Validation?.Seconds ?? 0);

    static string Format(double v) => double.IsNaN(v) ? "n/a" : v.ToString("0.0000", CultureInfo.InvariantCulture);

    void Redraw(bool force)
    {
        if (live is null || !force && sinceDraw.ElapsedMilliseconds < 1000) return;
        sinceDraw.Restart();
        live.Update(Frame(live.Id));
    }

    string Frame(string id) => Runtime.LiveOutput.Frame(id, $"<div style=\"font-family:monospace\">{status}</div>{barHtml}{Table()}{chartHtml}", "detseg-training");

    /// <summary>The compact table, newest epoch last; the best epoch carries a star.</summary>
    string Table()
    {
        if (history.Count == 0) return "";
        bool monitorColumn = options.Monitor != "loss";
        var s = new StringBuilder("<table style=\"font-family:monospace;border-collapse:collapse;margin:4px 0\"><tr>");
        foreach (string h in new[] { "epoch", "train loss", "val loss" }.Concat(monitorColumn ? [WebUtility.HtmlEncode(MonitorName)] : []).Concat(["best", "seconds"]))
            s.Append($"<th style=\"padding:1px 8px;text-align:right\">{h}</th>");
        s.Append("</tr>");
        foreach (var e in history)
        {
            string[] cells = [e.Epoch.ToString(CultureInfo.InvariantCulture), Format(e.Train.Loss), Format(e.Validation?.Loss ?? double.NaN),
                .. monitorColumn ? [Format(Monitored(e))] : Array.Empty<string>(), e.Epoch == bestEpoch ? "★" : "",
                Seconds(e).ToString("0.0", CultureInfo.InvariantCulture)];
            s.Append("<tr>").Append(string.Concat(cells.Select(c => $"<td style=\"padding:1px 8px;text-align:right\">{c}</td>"))).Append("</tr>");
        }
        return s.Append("</table>").ToString();
    }

    /// <summary>Loss (training and validation) and, when it is not the loss, the monitored metric per epoch.</summary>
    string Curves()
    {
        if (history.Count == 0) return "";
        var epochs = history.Select(h => (double)h.Epoch).ToArray();
        Series Of(string name, Phase phase, string metric) => new(name, history.Select(h =>
            (phase == Phase.Training ? h.Train : h.Validation)?.Metrics.GetValueOrDefault(metric, double.NaN) ?? double.NaN).ToArray(), epochs);
        IEnumerable<Series> Measured(params Series[] series) => series.Where(s => s.Y.Any(double.IsFinite));
        var panels = new List<Panel> { new("loss", [.. Measured(Of("training", Phase.Training, "loss"), Of("validation", Phase.Validation, "loss"))]) };
        if (options.Monitor != "loss")
        {
            var metric = Measured(Of("training", Phase.Training, options.Monitor), Of("validation", Phase.Validation, options.Monitor)).ToList();
            if (metric.Count > 0) panels.Add(new Panel(options.Monitor, metric));
        }
        panels.RemoveAll(p => p.Series.Count == 0);
        if (panels.Count == 0) return "";
        return Charts.LineGrid(panels, columns: 2, xTitle: "epoch", markerX: bestEpoch >= 0 ? bestEpoch : null, markerLabel: "best",
            panelWidth: 360, panelHeight: 260).ToHtml();
    }
}

using System.Text.Json;
using System.Text.Json.Nodes;

namespace DetSeg.Training;

/// <summary>One epoch of <see cref="Trainer.Train"/>: training and validation results and the learning rate used.</summary>
/// <param name="Epoch">0-based epoch index.</param>
/// <param name="Train">The training pass.</param>
/// <param name="Validation">The validation pass; null without a validation loader.</param>
/// <param name="LearningRate">The first parameter group's learning rate during the epoch.</param>
/// <param name="IsBest">Whether this epoch became the best checkpoint.</param>
public sealed record EpochLog(int Epoch, EpochResult Train, EpochResult? Validation, double LearningRate, bool IsBest);

/// <summary>Why training stopped.</summary>
public enum StopReason
{
    /// <summary>All <see cref="TrainOptions.Epochs"/> ran.</summary>
    Completed,
    /// <summary>No improvement for <see cref="TrainOptions.Patience"/> epochs.</summary>
    EarlyStopping,
    /// <summary>A training or validation loss, or a weight or buffer, was NaN or infinite: the run stopped, that epoch
    /// is neither best nor saved as <c>last.ckpt</c>.</summary>
    NonFiniteLoss,
}

/// <summary>What <see cref="Trainer.Train"/> returns: the history, the best checkpoint and why it stopped.</summary>
/// <remarks>Disposing it releases the in-memory best checkpoint (<see cref="Checkpoint.Dispose"/>); the history stays.
/// A rerun notebook cell lets its <see cref="TrainingRun"/> own the result, so the previous run's snapshot goes with it.</remarks>
public sealed class TrainResult : IDisposable
{
    /// <summary>Every epoch, in order (including epochs run before a resume).</summary>
    public required IReadOnlyList<EpochLog> History { get; init; }

    /// <summary>The best epoch's snapshot (in memory; also <c>best.ckpt</c> on disk when the run is named). Null if no epoch had a finite monitored value.</summary>
    public Checkpoint? Best { get; init; }

    /// <summary>Why training stopped.</summary>
    public required StopReason StopReason { get; init; }

    /// <summary>Releases <see cref="Best"/>'s bytes (see <see cref="Checkpoint.Dispose"/>); the history, <see cref="BestEpoch"/> and
    /// <see cref="BestValue"/> stay readable.</summary>
    public void Dispose() => Best?.Dispose();

    /// <summary>The printed stop message, e.g. <c>No improvement in val mean_iou for 5 epochs (best 0.8123 at epoch 12): stopping.</c></summary>
    public required string StopMessage { get; init; }

    /// <summary>The options that produced it (monitor, direction, run folder).</summary>
    public required TrainOptions Options { get; init; }

    /// <summary>The best epoch (0-based), or -1.</summary>
    public int BestEpoch => Best?.Epoch ?? -1;

    /// <summary>The monitored value at the best epoch, or NaN.</summary>
    public double BestValue => Best is null ? double.NaN : Best.Extra["best_value"];

    /// <summary>A metric's values per epoch for one phase (NaN where absent), e.g. <c>Series(Phase.Validation, "mean_iou")</c>.</summary>
    public double[] Series(Phase phase, string metric) => History.Select(h =>
        (phase == Phase.Training ? h.Train : h.Validation) is { } r && r.Metrics.TryGetValue(metric, out var v) ? v : double.NaN).ToArray();

    /// <summary>The loss of every training batch of every epoch, in order (<see cref="EpochResult.BatchLosses"/>).</summary>
    public IReadOnlyList<double> BatchLosses => History.SelectMany(h => h.Train.BatchLosses).ToList();

    /// <summary>
    /// Prints the course's log of the run: per epoch every training and validation figure, the monitored value
    /// with the best so far, then why training stopped (what <see cref="Trainer.Train"/> writes to
    /// <see cref="TrainOptions.Log"/> when one is set).
    /// </summary>
    /// <param name="writer">Where to print; null is <see cref="Console.Out"/>.</param>
    public void PrintLog(TextWriter? writer = null)
    {
        writer ??= Console.Out;
        string monitor = $"{(Options.MonitorPhase == Phase.Training ? "train" : "val")} {Options.Monitor}";
        static string Describe(double v) => double.IsNaN(v) ? "n/a" : v.ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture);
        double bestValue = double.NaN;
        int bestEpoch = -1;
        foreach (var h in History)
        {
            writer.WriteLine($"Epoch: {h.Epoch}".PadRight(11) + new string('#', 42));
            writer.WriteLine($"TRAINING:   {h.Train}");
            if (h.Validation is not null) writer.WriteLine($"VALIDATION: {h.Validation}");
            double current = (Options.MonitorPhase == Phase.Training ? h.Train : h.Validation)?.Metrics.GetValueOrDefault(Options.Monitor, double.NaN) ?? double.NaN;
            if (h.IsBest) (bestValue, bestEpoch) = (current, h.Epoch);
            writer.WriteLine($"{monitor} = {Describe(current)}{(h.IsBest ? "  (new best)" : $"  (best {Describe(bestValue)} at epoch {bestEpoch}, {h.Epoch - bestEpoch} epoch(s) ago)")}");
        }
        writer.WriteLine(StopMessage);
        writer.Flush();
    }

    /// <summary>The history as the JSON written to <c>metrics.json</c>.</summary>
    public string ToJson() => ToJsonNode(History, Options, Best, StopMessage, StopReason).ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    internal static JsonObject ToJsonNode(IEnumerable<EpochLog> history, TrainOptions o, Checkpoint? best, string? stop, StopReason? reason = null)
    {
        var epochs = new JsonArray();
        foreach (var h in history)
        {
            var e = new JsonObject { ["epoch"] = h.Epoch, ["lr"] = h.LearningRate, ["is_best"] = h.IsBest, ["train"] = Node(h.Train) };
            if (h.Validation is not null) e["val"] = Node(h.Validation);
            epochs.Add(e);
        }
        return new JsonObject
        {
            ["monitor"] = o.Monitor,
            ["monitor_phase"] = o.MonitorPhase.ToString(),
            ["higher_is_better"] = o.HigherIsBetter,
            ["patience"] = o.Patience,
            ["best_epoch"] = best?.Epoch ?? -1,
            ["best_value"] = best is null ? null : JsonValue.Create(Checkpoint.Finite(new Dictionary<string, double> { ["v"] = best.Extra["best_value"] })["v"]),
            ["stop"] = stop,
            ["stop_reason"] = reason?.ToString(),
            ["history"] = epochs,
        };
    }

    static JsonObject Node(EpochResult r)
    {
        var o = new JsonObject { ["seconds"] = Math.Round(r.Seconds, 3), ["non_finite_loss"] = r.NonFiniteLoss };
        foreach (var (k, v) in Checkpoint.Finite(r.Metrics)) o[k] = JsonValue.Create(v);
        // JSON has no NaN: a non-finite batch loss (the one that stopped a run) is stored as null.
        if (r.BatchLosses.Count > 0)
            o["batch_losses"] = new JsonArray(r.BatchLosses.Select(v => double.IsFinite(v) ? JsonValue.Create(v) : null).ToArray<JsonNode?>());
        return o;
    }

    internal static List<EpochLog> ParseHistory(JsonNode root)
    {
        var list = new List<EpochLog>();
        foreach (var e in root["history"]!.AsArray())
        {
            int epoch = e!["epoch"]!.GetValue<int>();
            list.Add(new EpochLog(epoch, Parse(e["train"]!, Phase.Training, epoch),
                e["val"] is { } v ? Parse(v, Phase.Validation, epoch) : null,
                e["lr"]!.GetValue<double>(), e["is_best"]!.GetValue<bool>()));
        }
        return list;
    }

    static EpochResult Parse(JsonNode n, Phase phase, int epoch)
    {
        var o = n.AsObject();
        var metrics = Checkpoint.Unfinite(o.Where(kv => kv.Key is not "seconds" and not "non_finite_loss" and not "batch_losses")
            .ToDictionary(kv => kv.Key, kv => JsonSerializer.SerializeToElement(kv.Value)));
        var batchLosses = o["batch_losses"]?.AsArray().Select(v => v?.GetValue<double>() ?? double.NaN).ToArray() ?? [];
        return new EpochResult(phase, epoch, metrics, o["seconds"]!.GetValue<double>(), o["non_finite_loss"]!.GetValue<bool>()) { BatchLosses = batchLosses };
    }
}

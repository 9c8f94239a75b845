using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Training;

/// <summary>
/// An exponential moving average of a model's weights (YOLOv5's <c>ModelEMA</c>): after every optimizer step,
/// ema ← d·ema + (1 − d)·weights with d = <see cref="Decay"/>·(1 − exp(−updates / <see cref="Tau"/>)), so the average
/// follows the weights closely at first and smooths over the last ~1/(1 − Decay) steps later. Floating-point
/// buffers (BatchNorm's running statistics) are averaged the same way; integer ones are copied.
/// </summary>
/// <remarks>
/// The average lives on the model's device as one shadow tensor per state_dict entry, so it costs one more copy of
/// the weights and two in-place ops per tensor and step. Use it through <see cref="TrainOptions.Ema"/>: the trainer
/// then validates, selects and checkpoints the averaged weights.
/// </remarks>
public sealed class ModelEma : IDisposable
{
    readonly (Tensor live, Tensor shadow)[] pairs;
    readonly string[] names;

    /// <summary>The decay the average approaches.</summary>
    public double Decay { get; }

    /// <summary>Updates over which the decay ramps up (e-folding).</summary>
    public double Tau { get; }

    /// <summary>Updates so far.</summary>
    public long Updates { get; private set; }

    /// <summary>Starts an average at <paramref name="model"/>'s current weights.</summary>
    /// <param name="model">The model being trained.</param>
    /// <param name="decay">d's limit, in (0, 1); YOLOv5 uses 0.9999 over 300 epochs, shorter runs want less.</param>
    /// <param name="tau">Ramp-up in updates (YOLOv5: 2,000).</param>
    public ModelEma(nn.Module model, double decay = 0.999, double tau = 2000)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!(decay > 0 && decay < 1)) throw new ArgumentOutOfRangeException(nameof(decay), decay, "must be in (0, 1).");
        if (!(tau > 0)) throw new ArgumentOutOfRangeException(nameof(tau), tau, "must be > 0.");
        Decay = decay; Tau = tau;
        using var _ = no_grad();
        var state = model.state_dict();
        names = state.Keys.ToArray();
        pairs = state.Values.Select(t => (t, t.detach().clone())).ToArray();
    }

    /// <summary>The decay of the next update.</summary>
    public double CurrentDecay => Decay * (1 - Math.Exp(-(Updates + 1) / Tau));

    /// <summary>Folds the model's current weights into the average (call after each optimizer step).</summary>
    public void Update()
    {
        double d = CurrentDecay;
        // Held for the calls below and freed after: a per-step number passed as a temporary could be freed mid-call (Runtime/Scalars).
        using Scalar keep = d.ToScalar(), take = (1 - d).ToScalar();
        using (no_grad())
            foreach (var (live, shadow) in pairs)
            {
                if (shadow.is_floating_point()) shadow.mul_(keep).add_(live, take);   // TorchSharp's lerp_ takes a tensor weight only
                else shadow.copy_(live);
            }
        Updates++;
    }

    /// <summary>Writes the averaged weights into <paramref name="model"/> (the one averaged, or another of the same architecture).</summary>
    public void CopyTo(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var state = model.state_dict();
        using var _ = no_grad();
        for (int i = 0; i < names.Length; i++)
        {
            if (!state.TryGetValue(names[i], out var target))
                throw new ArgumentException($"The model has no '{names[i]}': ModelEma.CopyTo needs the architecture it averaged.", nameof(model));
            target.copy_(pairs[i].shadow);
        }
    }

    /// <summary>Swaps the model's weights with the average: call twice to swap back (the trainer evaluates between).</summary>
    public void Swap()
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        foreach (var (live, shadow) in pairs)
        {
            var tmp = live.detach().clone();
            live.copy_(shadow);
            shadow.copy_(tmp);
        }
    }

    /// <summary>Restores the count of updates (a resumed run's average continues its ramp).</summary>
    internal void SetUpdates(long updates) => Updates = updates;

    /// <summary>Frees the shadow tensors.</summary>
    public void Dispose()
    {
        foreach (var (_, shadow) in pairs) shadow.Dispose();
    }
}

/// <summary>The settings of a <see cref="ModelEma"/> (<see cref="TrainOptions.Ema"/>).</summary>
/// <param name="Decay">The decay the average approaches: it smooths over the last ~1/(1 − Decay) steps.</param>
/// <param name="Tau">Steps over which the decay ramps up (e-folding); about an epoch's worth suits short runs.</param>
public sealed record EmaOptions(double Decay = 0.999, double Tau = 2000);

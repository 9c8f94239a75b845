using System.Collections.Concurrent;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Training;

/// <summary>
/// <c>torch.optim</c>'s Adam, AdamW and SGD with a step that cannot crash when another thread triggers a garbage
/// collection: <c>var optimizer = Optim.Adam(model.parameters(), lr: 1e-3);</c> where PyTorch writes
/// <c>optim.Adam(model.parameters(), lr=1e-3)</c>.
/// </summary>
/// <remarks>
/// TorchSharp 0.107's optimizers pass their coefficients to libtorch as temporary <see cref="Scalar"/>s
/// (<c>mul_(beta1)</c>, <c>addcdiv_(…, -step_size)</c>…), which a GC started by DataLoader workers or the notebook
/// kernel can finalize while libtorch still reads them; training then dies at a random step with
/// "Expected false to be true" or "Unknown scalar type" (see <c>Runtime/TORCHSHARP-NOTES.md</c>). The optimizers
/// made here are subclasses of TorchSharp's (<see cref="Optimizers.Adam"/>, <see cref="Optimizers.AdamW"/>,
/// <see cref="Optimizers.SGD"/>) that hold every Scalar until the call returned. Everything else is TorchSharp's:
/// the same defaults (also AdamW's <c>weight_decay = 0</c>, where PyTorch's default is 0.01), parameter groups,
/// learning-rate schedulers, state, and <c>save_state_dict</c> bytes with the same type name, so a checkpoint
/// written with <c>torch.optim.Adam</c> restores into <see cref="Adam(IEnumerable{Parameter}, double, double, double, double, double, bool, bool)"/>
/// and back, and the updates are bit-identical.
/// </remarks>
public static class Optim
{
    /// <summary>Adam (Kingma and Ba, 2015) over one parameter group; the arguments of <c>torch.optim.Adam</c>.</summary>
    /// <param name="parameters">The parameters to optimise (e.g. <c>model.parameters()</c>).</param>
    /// <param name="lr">Learning rate.</param>
    /// <param name="beta1">Decay of the running mean of the gradient.</param>
    /// <param name="beta2">Decay of the running mean of the squared gradient.</param>
    /// <param name="eps">Added to the denominator for numerical stability.</param>
    /// <param name="weight_decay">L2 penalty, added to the gradient.</param>
    /// <param name="amsgrad">Use the running maximum of the second moment (AMSGrad).</param>
    /// <param name="maximize">Maximise the objective instead of minimising it.</param>
    public static Optimizers.Adam Adam(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
        => new(parameters, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize);

    /// <summary>Adam over named parameters (<c>model.named_parameters()</c>); see <see cref="Adam(IEnumerable{Parameter}, double, double, double, double, double, bool, bool)"/>.</summary>
    public static Optimizers.Adam Adam(IEnumerable<(string name, Parameter parameter)> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
        => new(parameters.Select(np => np.parameter), lr, beta1, beta2, eps, weight_decay, amsgrad, maximize);

    /// <summary>Adam over parameter groups (<c>new TorchSharp.Modules.Adam.ParamGroup(params, options)</c>); options a group leaves unset take these values.</summary>
    public static Optimizers.Adam Adam(IEnumerable<TorchSharp.Modules.Adam.ParamGroup> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
        => new(parameters, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize);

    /// <summary>AdamW (Loshchilov and Hutter, 2019: weight decay decoupled from the gradient) over one parameter group; the arguments of <c>torch.optim.AdamW</c>.</summary>
    /// <param name="parameters">The parameters to optimise.</param>
    /// <param name="lr">Learning rate.</param>
    /// <param name="beta1">Decay of the running mean of the gradient.</param>
    /// <param name="beta2">Decay of the running mean of the squared gradient.</param>
    /// <param name="eps">Added to the denominator for numerical stability.</param>
    /// <param name="weight_decay">Decoupled decay: each step multiplies the weights by <c>1 - lr·weight_decay</c>. TorchSharp's default 0, kept (PyTorch's is 0.01).</param>
    /// <param name="amsgrad">Use the running maximum of the second moment (AMSGrad).</param>
    /// <param name="maximize">Maximise the objective instead of minimising it.</param>
    public static Optimizers.AdamW AdamW(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
        => new(parameters, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize);

    /// <summary>AdamW over named parameters; see <see cref="AdamW(IEnumerable{Parameter}, double, double, double, double, double, bool, bool)"/>.</summary>
    public static Optimizers.AdamW AdamW(IEnumerable<(string name, Parameter parameter)> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
        => new(parameters.Select(np => np.parameter), lr, beta1, beta2, eps, weight_decay, amsgrad, maximize);

    /// <summary>AdamW over parameter groups (e.g. one that decays and one that does not); options a group leaves unset take these values.</summary>
    public static Optimizers.AdamW AdamW(IEnumerable<TorchSharp.Modules.AdamW.ParamGroup> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
        => new(parameters, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize);

    /// <summary>Stochastic gradient descent with optional momentum (Nesterov's too) over one parameter group; the arguments of <c>torch.optim.SGD</c>.</summary>
    /// <param name="parameters">The parameters to optimise.</param>
    /// <param name="lr">Learning rate.</param>
    /// <param name="momentum">Momentum factor (0: plain SGD).</param>
    /// <param name="dampening">Dampening of the momentum's gradient term.</param>
    /// <param name="weight_decay">L2 penalty, added to the gradient.</param>
    /// <param name="nesterov">Nesterov momentum (needs momentum &gt; 0 and dampening 0).</param>
    /// <param name="maximize">Maximise the objective instead of minimising it.</param>
    public static Optimizers.SGD SGD(IEnumerable<Parameter> parameters, double lr, double momentum = 0, double dampening = 0, double weight_decay = 0, bool nesterov = false, bool maximize = false)
        => new(parameters, lr, momentum, dampening, weight_decay, nesterov, maximize);

    /// <summary>SGD over named parameters; see <see cref="SGD(IEnumerable{Parameter}, double, double, double, double, bool, bool)"/>.</summary>
    public static Optimizers.SGD SGD(IEnumerable<(string name, Parameter parameter)> parameters, double lr, double momentum = 0, double dampening = 0, double weight_decay = 0, bool nesterov = false, bool maximize = false)
        => new(parameters.Select(np => np.parameter), lr, momentum, dampening, weight_decay, nesterov, maximize);

    /// <summary>SGD over parameter groups; options a group leaves unset take these values.</summary>
    public static Optimizers.SGD SGD(IEnumerable<TorchSharp.Modules.SGD.ParamGroup> parameters, double lr, double momentum = 0, double dampening = 0, double weight_decay = 0, bool nesterov = false, bool maximize = false)
        => new(parameters, lr, momentum, dampening, weight_decay, nesterov, maximize);

    /// <summary>
    /// <c>optimizer.step()</c>, made GC-safe also for an optimizer built with TorchSharp's own <c>torch.optim.Adam</c>,
    /// <c>AdamW</c> or <c>SGD</c>: their update is performed here with the same maths and the same state (bit-identical),
    /// holding every Scalar until libtorch returned. <see cref="Trainer"/> steps through this.
    /// </summary>
    /// <remarks>
    /// DetSeg's optimizers (<see cref="Adam(IEnumerable{Parameter}, double, double, double, double, double, bool, bool)"/>…) are stepped as they are.
    /// Any other optimizer (TorchSharp's RMSprop, Adagrad…, or a subclass with its own step) is stepped by its own
    /// <c>step()</c>, after a one-time warning per type on standard error, since DetSeg cannot tell whether it is safe.
    /// </remarks>
    /// <exception cref="InvalidOperationException">A parameter group's parameters changed (e.g. a lazy filter on
    /// <c>requires_grad</c>) so that they no longer match the optimizer's state.</exception>
    public static void Step(optim.Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        switch (optimizer)
        {
            case Optimizers.Adam or Optimizers.AdamW or Optimizers.SGD:
                optimizer.step();
                break;
            // Exact types only: a user's subclass may have changed the update.
            case TorchSharp.Modules.Adam a when a.GetType() == typeof(TorchSharp.Modules.Adam):
                StepFromOutside<TorchSharp.Modules.Adam.Options, TorchSharp.Modules.Adam.State>(a, Optimizers.OptimizerSteps.Adam);
                break;
            case TorchSharp.Modules.AdamW w when w.GetType() == typeof(TorchSharp.Modules.AdamW):
                StepFromOutside<TorchSharp.Modules.AdamW.Options, TorchSharp.Modules.AdamW.State>(w, Optimizers.OptimizerSteps.AdamW);
                break;
            case TorchSharp.Modules.SGD s when s.GetType() == typeof(TorchSharp.Modules.SGD):
                StepFromOutside<TorchSharp.Modules.SGD.Options, TorchSharp.Modules.SGD.State>(s, Optimizers.OptimizerSteps.SGD);
                break;
            default:
                if (Warned.TryAdd(optimizer.GetType(), true))
                    Console.Error.WriteLine($"DetSeg warning: {optimizer.GetType().FullName}.step() may pass temporary Scalars to libtorch, which a garbage " +
                        "collection on another thread can free mid-call (TorchSharp 0.107; see Runtime/TORCHSHARP-NOTES.md). DetSeg steps Adam, AdamW and SGD safely: " +
                        "use Optim.Adam/AdamW/SGD (or torch.optim's) for a training that cannot die at a random step.");
                optimizer.step();
                break;
        }
    }

    static readonly ConcurrentDictionary<Type, bool> Warned = new();

    /// <summary>
    /// What TorchSharp's <c>_step</c> does (no_grad, one dispose scope, group by group), reaching the state through
    /// the public <c>state_dict()</c>: its <c>State</c> list follows the groups' parameters in order.
    /// </summary>
    static void StepFromOutside<TOptions, TState>(OptimizerHelper optimizer, Action<TOptions, IEnumerable<(Parameter, TState)>> update)
        where TOptions : OptimizerOptions where TState : OptimizerState
    {
        var dict = optimizer.state_dict();
        var groups = optimizer.ParamGroups.Cast<ParamGroup>().ToList();
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        for (int g = 0; g < groups.Count; g++)
        {
            var parameters = groups[g].Parameters.ToList();
            var indices = dict.StateIndexRef[g];
            if (parameters.Count != indices.Count)
                throw new InvalidOperationException($"{optimizer.GetType().Name}: parameter group {g} now yields {parameters.Count} parameters, its state holds {indices.Count}. " +
                    "Give the optimizer a fixed list (e.g. .ToList()) rather than a filter whose result changes.");
            update((TOptions)dict.Options[g], parameters.Select((p, i) => (p, (TState)dict.State[indices[i]])));
        }
    }
}

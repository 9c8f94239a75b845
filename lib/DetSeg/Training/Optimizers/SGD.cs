using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Training.Optimizers;

/// <summary>
/// TorchSharp's <c>SGD</c> (<c>torch.optim.SGD</c>) with a step that no garbage collection on another thread can
/// break. Create it with <see cref="Optim.SGD(IEnumerable{Parameter}, double, double, double, double, bool, bool)"/>.
/// </summary>
/// <remarks>
/// Same options, parameter groups, momentum buffers, schedulers, <c>save_state_dict</c> format and type name as
/// <c>TorchSharp.Modules.SGD</c> (checkpoints move freely between the two); the step computes the same numbers
/// bit for bit but holds its Scalars until libtorch is done with them. See <see cref="Adam"/> and
/// <c>Runtime/TORCHSHARP-NOTES.md</c>.
/// </remarks>
public class SGD : TorchSharp.Modules.SGD
{
    /// <summary>As <c>torch.optim.SGD(parameters, lr, …)</c>: one parameter group.</summary>
    public SGD(IEnumerable<Parameter> parameters, double lr, double momentum = 0, double dampening = 0, double weight_decay = 0, bool nesterov = false, bool maximize = false)
        : base(parameters, lr, momentum, dampening, weight_decay, nesterov, maximize) { }

    /// <summary>As <c>torch.optim.SGD(groups, lr, …)</c>: options a group leaves unset take these defaults.</summary>
    public SGD(IEnumerable<ParamGroup> parameters, double lr, double momentum = 0, double dampening = 0, double weight_decay = 0, bool nesterov = false, bool maximize = false)
        : base(parameters, lr, momentum, dampening, weight_decay, nesterov, maximize) { }

    /// <summary>One SGD update of every parameter that has a gradient (TorchSharp's maths, GC-safe Scalars).</summary>
    /// <param name="closure">Re-evaluates the model and returns the loss; optional.</param>
    /// <returns>The closure's loss, or null.</returns>
    public override Tensor step(Func<Tensor>? closure = null) =>
        _step<ParamGroup>(group => OptimizerSteps.SGD(group.Options, group.Parameters.Select(p => (p, (State)_state[p.Handle]))), closure);
}

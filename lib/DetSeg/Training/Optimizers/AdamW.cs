using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Training.Optimizers;

/// <summary>
/// TorchSharp's <c>AdamW</c> (<c>torch.optim.AdamW</c>) with a step that no garbage collection on another thread can
/// break. Create it with <see cref="Optim.AdamW(IEnumerable{Parameter}, double, double, double, double, double, bool, bool)"/>.
/// </summary>
/// <remarks>
/// Same options, parameter groups, state, schedulers, <c>save_state_dict</c> format and type name as
/// <c>TorchSharp.Modules.AdamW</c> (checkpoints move freely between the two); the step computes the same numbers
/// bit for bit but holds its Scalars until libtorch is done with them. See <see cref="Adam"/> and
/// <c>Runtime/TORCHSHARP-NOTES.md</c>.
/// </remarks>
public class AdamW : TorchSharp.Modules.AdamW
{
    /// <summary>As <c>torch.optim.AdamW(parameters, …)</c>: one parameter group.</summary>
    public AdamW(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
        : base(parameters, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize) { }

    /// <summary>As <c>torch.optim.AdamW(groups, …)</c>: options a group leaves unset take these defaults.</summary>
    public AdamW(IEnumerable<ParamGroup> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
        : base(parameters, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize) { }

    /// <summary>One AdamW update of every parameter that has a gradient (TorchSharp's maths, GC-safe Scalars).</summary>
    /// <param name="closure">Re-evaluates the model and returns the loss; optional.</param>
    /// <returns>The closure's loss, or null.</returns>
    public override Tensor step(Func<Tensor>? closure = null) =>
        _step<ParamGroup>(group => OptimizerSteps.AdamW(group.Options, group.Parameters.Select(p => (p, (State)_state[p.Handle]))), closure);
}

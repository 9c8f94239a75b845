using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Training.Optimizers;

/// <summary>
/// TorchSharp's <c>Adam</c> (<c>torch.optim.Adam</c>) with a step that no garbage collection on another thread can
/// break. Create it with <see cref="Optim.Adam(IEnumerable{Parameter}, double, double, double, double, double, bool, bool)"/>.
/// </summary>
/// <remarks>
/// Same options, parameter groups, state, learning-rate schedulers and <c>save_state_dict</c> format as
/// <c>TorchSharp.Modules.Adam</c>, and the same type name, so checkpoints move freely between the two; the step
/// computes the same numbers bit for bit. Only <see cref="step"/> differs: TorchSharp's creates temporary
/// Scalars for its coefficients, which a GC started by DataLoader workers or the notebook kernel can free while
/// libtorch reads them ("Expected false to be true", "Unknown scalar type"); this one holds each until the call
/// returned. See <c>Runtime/TORCHSHARP-NOTES.md</c>.
/// </remarks>
public class Adam : TorchSharp.Modules.Adam
{
    /// <summary>As <c>torch.optim.Adam(parameters, …)</c>: one parameter group.</summary>
    public Adam(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
        : base(parameters, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize) { }

    /// <summary>As <c>torch.optim.Adam(groups, …)</c>: options a group leaves unset take these defaults.</summary>
    public Adam(IEnumerable<ParamGroup> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
        : base(parameters, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize) { }

    /// <summary>One Adam update of every parameter that has a gradient (TorchSharp's maths, GC-safe Scalars).</summary>
    /// <param name="closure">Re-evaluates the model and returns the loss; optional.</param>
    /// <returns>The closure's loss, or null.</returns>
    public override Tensor step(Func<Tensor>? closure = null) =>
        _step<ParamGroup>(group => OptimizerSteps.Adam(group.Options, group.Parameters.Select(p => (p, (State)_state[p.Handle]))), closure);
}

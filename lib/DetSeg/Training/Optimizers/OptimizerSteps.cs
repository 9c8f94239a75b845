using DetSeg.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Training.Optimizers;

/// <summary>
/// The update rules of TorchSharp 0.107's <c>Adam</c>, <c>AdamW</c> and <c>SGD</c> for one parameter group, op for op
/// and in the same order (so the numbers are bit-identical), with every <see cref="Scalar"/> held by a
/// <c>using</c> local until the native call that reads it has returned.
/// </summary>
/// <remarks>
/// TorchSharp's own <c>step()</c> passes its coefficients as C# numbers (<c>mul_(beta1)</c>,
/// <c>add_(grad, 1 - beta1)</c>, <c>addcmul_(…, 1 - beta2)</c>, <c>/ Math.Sqrt(bc2)</c>, <c>add_(eps)</c> with its hidden
/// alpha, <c>addcdiv_(…, -step_size)</c>): each becomes a temporary Scalar that a GC started by another thread can
/// finalize — freeing the native value — while libtorch still reads it (see <c>Runtime/TORCHSHARP-NOTES.md</c>).
/// A <c>using</c> local stays reachable until its <c>Dispose</c> at the end of the block, after the call.
/// Callers run these inside <c>no_grad</c> and a dispose scope, as TorchSharp's <c>_step</c> does: the temporaries
/// (<c>grad</c>, <c>-grad</c>, <c>sqrt()</c>…) belong to that scope, which also keeps them reachable.
/// </remarks>
internal static class OptimizerSteps
{
    /// <summary><c>TorchSharp.Modules.Adam.step</c> for one group: L2 weight decay added to the gradient, optional AMSGrad.</summary>
    internal static void Adam(TorchSharp.Modules.Adam.Options o, IEnumerable<(Parameter Param, TorchSharp.Modules.Adam.State State)> items)
    {
        double beta1 = o.beta1!.Value, beta2 = o.beta2!.Value, weightDecay = o.weight_decay!.Value;
        double eps = o.eps!.Value, lr = o.LearningRate!.Value;
        bool amsgrad = o.amsgrad!.Value, maximize = o.maximize!.Value;
        using var beta1S = beta1.ToScalar();
        using var oneMinusBeta1 = (1.0 - beta1).ToScalar();
        using var beta2S = beta2.ToScalar();
        using var oneMinusBeta2 = (1.0 - beta2).ToScalar();
        using var epsS = eps.ToScalar();
        using var weightDecayS = weightDecay.ToScalar();
        foreach (var (param, state) in items)
        {
            var grad = param.grad;
            if (grad is null) continue;
            if (maximize) grad = -grad;
            state.step++;
            double biasCorrection1 = 1.0 - Math.Pow(beta1, state.step);
            double biasCorrection2 = 1.0 - Math.Pow(beta2, state.step);
            if (weightDecay != 0.0) grad = grad.add(param, weightDecayS);
            state.exp_avg.mul_(beta1S).add_(grad, oneMinusBeta1);
            state.exp_avg_sq.mul_(beta2S).addcmul_(grad, grad.conj(), oneMinusBeta2);
            Update(param, state.exp_avg, Second(ref state.max_exp_avg_sq, state.exp_avg_sq, amsgrad), biasCorrection1, biasCorrection2, lr, epsS);
        }
    }

    /// <summary><c>TorchSharp.Modules.AdamW.step</c> for one group: decoupled weight decay <c>param *= 1 - lr·wd</c> (always applied, as TorchSharp does).</summary>
    internal static void AdamW(TorchSharp.Modules.AdamW.Options o, IEnumerable<(Parameter Param, TorchSharp.Modules.AdamW.State State)> items)
    {
        double beta1 = o.beta1!.Value, beta2 = o.beta2!.Value, weightDecay = o.weight_decay!.Value;
        double eps = o.eps!.Value, lr = o.LearningRate!.Value;
        bool amsgrad = o.amsgrad!.Value, maximize = o.maximize!.Value;
        using var beta1S = beta1.ToScalar();
        using var oneMinusBeta1 = (1.0 - beta1).ToScalar();
        using var beta2S = beta2.ToScalar();
        using var oneMinusBeta2 = (1.0 - beta2).ToScalar();
        using var epsS = eps.ToScalar();
        using var decay = (1.0 - lr * weightDecay).ToScalar();
        foreach (var (param, state) in items)
        {
            var grad = param.grad;
            if (grad is null) continue;
            if (maximize) grad = -grad;
            state.step++;
            param.mul_(decay);
            double biasCorrection1 = 1.0 - Math.Pow(beta1, state.step);
            double biasCorrection2 = 1.0 - Math.Pow(beta2, state.step);
            state.exp_avg.mul_(beta1S).add_(grad, oneMinusBeta1);
            state.exp_avg_sq.mul_(beta2S).addcmul_(grad, grad, oneMinusBeta2);
            Update(param, state.exp_avg, Second(ref state.max_exp_avg_sq, state.exp_avg_sq, amsgrad), biasCorrection1, biasCorrection2, lr, epsS);
        }
    }

    /// <summary>The second moment the denominator uses: <c>exp_avg_sq</c>, or with AMSGrad its running maximum (a new tensor each step, as in TorchSharp).</summary>
    static Tensor Second(ref Tensor? maxExpAvgSq, Tensor expAvgSq, bool amsgrad)
    {
        if (!amsgrad) return expAvgSq;
        var old = maxExpAvgSq!;
        maxExpAvgSq = torch.maximum(old, expAvgSq).DetachFromDisposeScope();
        old.Dispose();
        return maxExpAvgSq;
    }

    /// <summary><c>param += -(lr / bc1) · exp_avg / (sqrt(v) / sqrt(bc2) + eps)</c>, written as TorchSharp writes it.</summary>
    static void Update(Parameter param, Tensor expAvg, Tensor second, double biasCorrection1, double biasCorrection2, double lr, Scalar eps)
    {
        using var sqrtBiasCorrection2 = Math.Sqrt(biasCorrection2).ToScalar();
        // TorchSharp writes 0.0 - step_size (not -step_size): the same value, down to the sign of a zero step.
        using var minusStepSize = (0.0 - lr / biasCorrection1).ToScalar();
        // add_(eps) alone would create its hidden alpha = 1 as another temporary Scalar.
        var denom = second.sqrt().div(sqrtBiasCorrection2).add_(eps, Scalars.OneL);
        param.addcdiv_(expAvg, denom, minusStepSize);
    }

    /// <summary><c>TorchSharp.Modules.SGD.step</c> for one group: L2 weight decay, momentum with dampening, Nesterov.</summary>
    internal static void SGD(TorchSharp.Modules.SGD.Options o, IEnumerable<(Parameter Param, TorchSharp.Modules.SGD.State State)> items)
    {
        double momentum = o.momentum!.Value, dampening = o.dampening!.Value, weightDecay = o.weight_decay!.Value;
        double lr = o.LearningRate!.Value;
        bool nesterov = o.nesterov!.Value, maximize = o.maximize!.Value;
        using var weightDecayS = weightDecay.ToScalar();
        using var momentumS = momentum.ToScalar();
        using var oneMinusDampening = (1.0 - dampening).ToScalar();
        // TorchSharp flips the step's sign for maximize instead of negating the gradient.
        using var alpha = (maximize ? lr : 0.0 - lr).ToScalar();
        foreach (var (param, state) in items)
        {
            var grad = param.grad;
            if (grad is null) continue;
            if (weightDecay != 0.0) grad = grad.add(param, weightDecayS);
            if (momentum != 0.0)
            {
                var buffer = state.momentum_buffer;
                if (buffer is null)
                    buffer = state.momentum_buffer = grad.clone().detach().DetachFromDisposeScope();
                else
                    buffer.mul_(momentumS).add_(grad, oneMinusDampening);
                grad = nesterov ? grad.add(buffer, momentumS) : buffer;
            }
            param.add_(grad, alpha);
        }
    }
}

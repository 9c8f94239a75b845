using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Data;

/// <summary>
/// The course's <c>batched_std_mean</c>: standard deviation and mean over dim 0 of a stream of batches without
/// holding them all, with Chan et al.'s pairwise update (numerically stable, unlike summing x and x²).
/// For <c>x = randn(1000, 5, 2)</c> fed as batches along dim 0 it equals <c>std_mean(x, dim=0)</c>.
/// </summary>
public static class BatchedStdMean
{
    /// <summary>Std and mean over dim 0 of all batches (each <c>[n x ...]</c>, same trailing shape), on their device.
    /// Accumulates in float64 and returns the batches' dtype.</summary>
    /// <param name="batches">The batches; a batch of one row is fine.</param>
    /// <param name="unbiased">Divide by N - 1 (Bessel's correction) instead of N.</param>
    /// <exception cref="ArgumentException">No rows at all, too few rows for the unbiased estimate, or trailing shapes differ.</exception>
    public static (Tensor Std, Tensor Mean) Compute(IEnumerable<Tensor> batches, bool unbiased = true)
    {
        using var scope = NewDisposeScope();
        long runningCount = 0;
        Tensor? runningMean = null, runningMass = null;
        ScalarType dtype = ScalarType.Float32;
        foreach (var batch in batches)
        {
            long count = batch.shape[0];
            if (count == 0) continue;
            if (runningMean is not null && !batch.shape[1..].SequenceEqual(runningMean.shape))
                throw new ArgumentException($"Batch of shape [{string.Join(" x ", batch.shape)}] does not match earlier rows [{string.Join(" x ", runningMean.shape)}].", nameof(batches));
            dtype = batch.dtype;
            var x = batch.to(ScalarType.Float64);
            var (variance, mean) = var_mean(x, new long[] { 0 }, unbiased: false);
            runningMean ??= zeros_like(mean);
            runningMass ??= zeros_like(mean);
            var mass = mean.sub(runningMean);
            runningMean = runningMean.add(mass.mul((double)count / (runningCount + count)));
            mass = mass.mul(mean.sub(runningMean));
            if (count > 1) mass = mass.add(variance).mul(count);
            runningMass = runningMass.add(mass);
            runningCount += count;
        }
        long denominator = runningCount - (unbiased ? 1 : 0);
        if (runningMean is null || runningMass is null || denominator <= 0)
            throw new ArgumentException($"Need at least {(unbiased ? 2 : 1)} rows for the {(unbiased ? "unbiased" : "biased")} std, got {runningCount}.", nameof(batches));
        var std = runningMass.div(denominator).sqrt().to(dtype);
        return (std.MoveToOuterDisposeScope(), runningMean.to(dtype).MoveToOuterDisposeScope());
    }
}

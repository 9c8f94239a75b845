using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;
using BN = DetSeg.Runtime.BatchNorm2d;

namespace DetSeg.Tests.Runtime;

/// <summary>
/// DetSeg's BatchNorm2d: TorchSharp's (= PyTorch's) maths, state_dict and dtypes, and a training forward that no
/// GC on another thread can break.
/// </summary>
public class BatchNorm2dTests
{
    /// <summary>Both modules' forward on the same inputs, output, input/weight/bias gradients and buffers equal bit for bit.</summary>
    static void AssertSameSteps(BN mine, TorchSharp.Modules.BatchNorm2d theirs, bool train, int steps, long seed)
    {
        if (train) { mine.train(); theirs.train(); } else { mine.eval(); theirs.eval(); }
        var g = new Generator((ulong)seed);
        for (int step = 0; step < steps; step++)
        {
            // [4 x 3 x 5 x 5], a different mean and scale each step so the running statistics move.
            var x = (randn(new long[] { 4, 3, 5, 5 }, generator: g) * (1 + step) + step).requires_grad_();
            var x2 = x.detach().clone().requires_grad_();
            var y = mine.call(x);
            var y2 = theirs.call(x2);
            string at = $"{(train ? "train" : "eval")} step {step}";
            Assert.True(Same(y, y2), $"{at}: outputs differ (max |diff| {(y - y2).abs().max().item<float>():g})");
            using var upstream = randn(y.shape, generator: g);
            (y * upstream).sum().backward();
            (y2 * upstream).sum().backward();
            Assert.True(Same(x.grad!, x2.grad!), $"{at}: input gradients differ");
            if (mine.weight is not null)
            {
                Assert.True(Same(mine.weight.grad!, theirs.weight.grad!), $"{at}: weight gradients differ");
                Assert.True(Same(mine.bias!.grad!, theirs.bias!.grad!), $"{at}: bias gradients differ");
            }
            AssertSameState(mine, theirs, at);
        }
    }

    /// <summary>Same shape and every element equal (torch.equal).</summary>
    static bool Same(Tensor a, Tensor b) => a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    static void AssertSameState(nn.Module mine, nn.Module theirs, string at)
    {
        var a = mine.state_dict();
        var b = theirs.state_dict();
        Assert.Equal(b.Keys.ToArray(), a.Keys.ToArray());
        foreach (var (key, t) in b)
        {
            Assert.Equal(t.dtype, a[key].dtype);
            Assert.Equal(t.shape, a[key].shape);
            Assert.True(Same(a[key], t), $"{at}: {key} differs: max |diff| {(a[key].to(ScalarType.Float64) - t.to(ScalarType.Float64)).abs().max().item<double>():g}");
        }
    }

    [Theory]
    [InlineData(0.1, true, true)]
    [InlineData(0.3, true, true)]
    [InlineData(null, true, true)]     // cumulative average
    [InlineData(0.1, false, true)]     // no weight/bias
    [InlineData(0.1, true, false)]     // no running statistics: batch statistics in eval mode too
    public void TrainThenEval_EqualsTorchSharpsBatchNorm2d(double? momentum, bool affine, bool trackRunningStats)
    {
        using var mine = new BN(3, eps: 1e-3, momentum: momentum, affine: affine, track_running_stats: trackRunningStats);
        using var theirs = nn.BatchNorm2d(3, eps: 1e-3, momentum: momentum ?? 0.1, affine: affine, track_running_stats: trackRunningStats);
        theirs.momentum = momentum; // its factory takes no null; the module property does (cumulative average)
        if (affine)
        {
            // Not the fresh 1/0, so a swapped weight and bias would show.
            using var _ = no_grad();
            var g = new Generator(3);
            var w = rand(3, generator: g) + 0.5;
            var b = randn(3, generator: g);
            mine.weight!.copy_(w); theirs.weight.copy_(w);
            mine.bias!.copy_(b); theirs.bias!.copy_(b);
        }
        AssertSameState(mine, theirs, "fresh");
        AssertSameSteps(mine, theirs, train: true, steps: 5, seed: 7);
        AssertSameSteps(mine, theirs, train: false, steps: 3, seed: 8);
        if (trackRunningStats) Assert.Equal(5L, mine.num_batches_tracked!.item<long>()); // eval counts no batch
    }

    [Fact]
    public void OneTrainingStep_UpdatesTheRunningStatistics_ByHand()
    {
        using var bn = new BN(1); // momentum 0.1
        bn.train();
        // One channel, values 1, 2, 3, 6: mean 3, biased variance (4+1+0+9)/4 = 3.5, unbiased 14/3.
        var x = tensor(new float[] { 1, 2, 3, 6 }).reshape(2, 1, 1, 2);
        var y = bn.call(x);
        float sd = MathF.Sqrt(3.5f + 1e-5f);
        var got = y.flatten().data<float>().ToArray();
        float[] want = [-2 / sd, -1 / sd, 0, 3 / sd];
        for (int i = 0; i < 4; i++) Assert.Equal(want[i], got[i], 5);
        Assert.Equal(0.1f * 3, bn.running_mean!.item<float>(), 6);                 // 0.9·0 + 0.1·3
        Assert.Equal(0.9f + 0.1f * 14 / 3, bn.running_var!.item<float>(), 6);      // 0.9·1 + 0.1·14/3
        Assert.Equal(1L, bn.num_batches_tracked!.item<long>());
        bn.eval();
        var z = bn.call(x);                                                         // running statistics now
        float rsd = MathF.Sqrt(0.9f + 1.4f / 3 + 1e-5f);
        Assert.Equal((1 - 0.3f) / rsd, z.flatten()[0].item<float>(), 5);
    }

    [Fact]
    public void StateDict_KeysShapesAndDtypes_AreTorchSharpsAndLoadBothWays()
    {
        using var mine = new BN(6);
        using var theirs = nn.BatchNorm2d(6);
        var a = mine.state_dict();
        Assert.Equal(new[] { "weight", "bias", "running_mean", "running_var", "num_batches_tracked" }, a.Keys.ToArray());
        Assert.Equal(ScalarType.Int64, a["num_batches_tracked"].dtype);
        Assert.Empty(a["num_batches_tracked"].shape);
        AssertSameState(mine, theirs, "fresh");
        Assert.Equal(new[] { "weight", "bias" }, mine.named_parameters().Select(p => p.name).ToArray());

        // Changed TorchSharp state loads into ours, and back.
        theirs.train();
        theirs.call(randn(2, 6, 3, 3));
        theirs.call(randn(2, 6, 3, 3));
        mine.load_state_dict(theirs.state_dict());
        AssertSameState(mine, theirs, "loaded");
        Assert.Equal(2L, mine.num_batches_tracked!.item<long>());
        mine.train();
        mine.call(randn(2, 6, 3, 3));
        theirs.load_state_dict(mine.state_dict());
        AssertSameState(mine, theirs, "loaded back");

        // to(float64) converts the floating-point tensors and keeps the counter int64, as TorchSharp's does.
        mine.to(ScalarType.Float64);
        theirs.to(ScalarType.Float64);
        AssertSameState(mine, theirs, "float64");
        Assert.Equal(ScalarType.Float64, mine.weight!.dtype);
        Assert.Equal(ScalarType.Int64, mine.num_batches_tracked!.dtype);
    }

    [Fact]
    public void WrongInput_NamesTheShape()
    {
        using var bn = new BN(4);
        var e = Assert.Throws<ArgumentException>(() => bn.call(zeros(2, 3, 5, 5)));
        Assert.Contains("[2, 3, 5, 5]", e.Message);
        e = Assert.Throws<ArgumentException>(() => bn.call(zeros(2, 4, 5)));
        Assert.Contains("[2, 4, 5]", e.Message);
    }

    [Fact]
    public void ResetRunningStats_BackToZeroOneAndNoBatch()
    {
        using var bn = new BN(2);
        bn.train();
        bn.call(randn(3, 2, 2, 2) + 4);
        bn.reset_running_stats();
        Assert.Equal(new float[] { 0, 0 }, bn.running_mean!.data<float>().ToArray());
        Assert.Equal(new float[] { 1, 1 }, bn.running_var!.data<float>().ToArray());
        Assert.Equal(0L, bn.num_batches_tracked!.item<long>());
    }

    /// <summary>
    /// Training forwards on this thread while another forces GCs; every call must succeed, give the same output
    /// and count exactly one batch.
    /// </summary>
    /// <remarks>
    /// With TorchSharp's nn.BatchNorm2d in the module's place this loop failed in 3 of 3 runs ("Expected false to
    /// be true" from <c>c10::Scalar::toLong</c>: its <c>num_batches_tracked.add_(1)</c> makes two temporary Scalars
    /// per call) after 14, 28 and 31 s (3,329 to 10,267 calls) on the 2-core build machine. 20 s therefore catches
    /// such a regression often but not every time; DetSeg's module holds its Scalar and never failed.
    /// </remarks>
    [Fact]
    public async Task TrainingForward_WithForcedGCsOnAnotherThread_NeverThrowsAndCountsEveryBatch()
    {
        using var bn = new BN(4);
        bn.train();
        var (calls, error) = await RunUnderGcPressure(bn, TimeSpan.FromSeconds(20));
        Assert.True(error is null, $"failed after {calls} calls: {error}");
        Assert.True(calls > 1000, $"only {calls} calls");
        Assert.Equal(calls, bn.num_batches_tracked!.item<long>());
    }

    /// <summary>
    /// Calls <paramref name="module"/> in a loop while another thread forces GCs, for <paramref name="duration"/> and
    /// at least <paramref name="minCalls"/> calls (a busy machine makes fewer calls per second), at most six times the
    /// duration; the first exception ends it.
    /// </summary>
    internal static async Task<(long calls, Exception? error)> RunUnderGcPressure(nn.Module<Tensor, Tensor> module, TimeSpan duration, long minCalls = 2000)
    {
        var x = randn(new long[] { 2, 4, 3, 3 }, generator: new Generator(5));
        Tensor expected;
        using (no_grad()) expected = module.call(x).detach().clone(); // training mode: batch statistics only
        using var stop = new CancellationTokenSource();
        var gc = Task.Run(() => { while (!stop.IsCancellationRequested) { GC.Collect(); GC.WaitForPendingFinalizers(); } });
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long calls = 1;
        Exception? error = null;
        try
        {
            while ((clock.Elapsed < duration || calls < minCalls) && clock.Elapsed < duration * 6)
            {
                using var scope = NewDisposeScope();
                var y = module.call(x);
                calls++;
                if (!Same(y, expected)) throw new Exception($"call {calls} gave other values under GC pressure");
            }
        }
        catch (Exception e) { error = e; }
        stop.Cancel();
        await gc;
        return (calls, error);
    }
}

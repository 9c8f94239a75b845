using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Runtime;

/// <summary>DetSeg's LeakyReLU: PyTorch's maths, and a slope that no GC on another thread can free mid-call.</summary>
public class LeakyReLUTests
{
    [Fact]
    public void Forward_IsTheLeakyReLU_InPlaceOrNot()
    {
        var x = tensor(new float[] { -2f, -0.5f, 0f, 0.5f, 3f });
        using var act = new DetSeg.Runtime.LeakyReLU(0.1);
        // Hand-computed: x for x ≥ 0, 0.1·x below.
        Assert.Equal(new float[] { -0.2f, -0.05f, 0f, 0.5f, 3f }, act.call(x).data<float>().ToArray());
        Assert.Equal(-2f, x[0].item<float>());                                   // not in place: input untouched

        var y = x.clone();
        using var inPlace = new DetSeg.Runtime.LeakyReLU(0.1, inplace: true);
        var z = inPlace.call(y);
        Assert.Equal(-0.2f, y[0].item<float>(), 6);                              // the input itself changed
        z.Dispose();                                                             // a new handle: the input lives on
        Assert.Equal(3f, y[4].item<float>());
    }

    [Fact]
    public async Task Forward_WithForcedGCsOnAnotherThread_NeverThrowsAndGivesTheSameValues()
    {
        var gen = new Generator(5);
        var x = randn(new long[] { 64 }, generator: gen);
        var expected = nn.functional.leaky_relu(x, 0.01);
        using var act = new DetSeg.Runtime.LeakyReLU(0.01);
        using var stop = new CancellationTokenSource();
        var gc = Task.Run(() => { while (!stop.IsCancellationRequested) { GC.Collect(); GC.WaitForPendingFinalizers(); } });
        long calls = 0;
        var sw = Stopwatch.StartNew();
        // 6 s and at least 2,000 calls (a busy machine makes fewer per second), at most 36 s.
        while ((sw.Elapsed.TotalSeconds < 6 || calls < 2000) && sw.Elapsed.TotalSeconds < 36)
        {
            using var scope = NewDisposeScope();
            var y = act.call(x);
            if (!y.allclose(expected, rtol: 0, atol: 0)) throw new Exception("LeakyReLU gave other values under GC pressure");
            calls++;
        }
        stop.Cancel();
        await gc;
        Assert.True(calls > 1000, $"only {calls} calls in {sw.Elapsed.TotalSeconds:F1} s");
    }
}

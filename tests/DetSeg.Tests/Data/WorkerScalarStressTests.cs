using System.Diagnostics;
using DetSeg.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Data;

/// <summary>
/// TorchSharp 0.107 lets a temporary Scalar be finalized while libtorch still reads it when another thread
/// triggers a GC (issue 11 item 1: "Unknown scalar type." on DataLoader workers). The augmentations run here on
/// two threads while a third forces GCs; every result must equal the one computed alone.
/// </summary>
public class WorkerScalarStressTests
{
    [Fact]
    public async Task Augmentations_OnTwoThreads_WithForcedGCs_NeverThrowAndGiveTheSameValues()
    {
        manual_seed(11);
        var image = rand(3, 64, 64);                                   // [3 x 64 x 64] in [0, 1]
        Func<Tensor, Tensor>[] ops =
        [
            x => TensorTransforms.AdjustHue(x, 0.2),
            x => TensorTransforms.AdjustContrast(x, 0.7),
            x => TensorTransforms.AdjustSaturation(x, 1.3),
            x => TensorTransforms.AdjustBrightness(x, 0.8),
            x => TensorTransforms.GaussianBlur(x, 5, 1.1),
        ];
        var expected = ops.Select(op => op(image).clone()).ToArray();

        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        var gc = Task.Run(() => { while (!stop.IsCancellationRequested) { GC.Collect(); GC.WaitForPendingFinalizers(); } });
        long calls = 0;
        Task Worker() => Task.Run(() =>
        {
            set_num_threads(1);
            while (!stop.IsCancellationRequested)
            {
                for (int k = 0; k < ops.Length; k++)
                {
                    using var scope = NewDisposeScope();
                    var y = ops[k](image);
                    if (!y.allclose(expected[k], rtol: 0, atol: 1e-6))
                        throw new Exception($"op {k} gave other values under GC pressure (max |diff| {(y - expected[k]).abs().max().item<float>()})");
                    Interlocked.Increment(ref calls);
                }
            }
        });
        var sw = Stopwatch.StartNew();
        await Task.WhenAll(Worker(), Worker(), gc);
        Assert.True(calls > 100, $"only {calls} calls in {sw.Elapsed.TotalSeconds:F1} s");
        Console.WriteLine($"stress: {calls} calls in {sw.Elapsed.TotalSeconds:F1} s");
    }
}

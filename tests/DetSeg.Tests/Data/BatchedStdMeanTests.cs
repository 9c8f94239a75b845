using DetSeg.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Data;

public class BatchedStdMeanTests
{
    static readonly torch.Device Cpu = new(DeviceType.CPU);

    [Fact]
    public void MatchesDirectStdMean_ForUnevenBatchesIncludingSizeOne()
    {
        // Reference: torch.std_mean over the whole data at once (the seed's docstring).
        var x = randn(new long[] { 103, 5, 2 }, generator: new Generator(4, Cpu)).mul(3).add(100);
        var sizes = new[] { 1, 40, 1, 1, 27, 33 };
        var batches = new List<Tensor>();
        int start = 0;
        foreach (int s in sizes) { batches.Add(x[TensorIndex.Slice(start, start + s)]); start += s; }
        var (std, mean) = BatchedStdMean.Compute(batches);
        var (estd, emean) = std_mean(x, new long[] { 0 }, unbiased: true);
        Assert.True(mean.allclose(emean, atol: 1e-4), "mean");
        Assert.True(std.allclose(estd, atol: 1e-4), "std");
        var (bstd, _) = BatchedStdMean.Compute(batches, unbiased: false);
        Assert.True(bstd.allclose(std_mean(x, new long[] { 0 }, unbiased: false).Item1, atol: 1e-4));
        Assert.Equal(new long[] { 5, 2 }, std.shape);
    }

    [Fact]
    public void AllBatchesOfOneRow_AndTooFewRows()
    {
        var rows = new[] { 1f, 2f, 4f }.Select(v => tensor(new[] { v }).view(1, 1)).ToList();
        var (std, mean) = BatchedStdMean.Compute(rows);
        // hand computation: mean 7/3, unbiased variance ((4/3)^2 + (1/3)^2 + (5/3)^2) / 2 = 7/3
        Assert.Equal(7.0 / 3, mean.item<float>(), 5);
        Assert.Equal(Math.Sqrt(7.0 / 3), std.item<float>(), 5);
        Assert.Throws<ArgumentException>(() => BatchedStdMean.Compute(rows.Take(1)));
        Assert.Throws<ArgumentException>(() => BatchedStdMean.Compute([zeros(2, 3), zeros(2, 4)]));
    }
}

using DetSeg.Data;
using DetSeg.Segmentation;
using DetSeg.Tests.Data;
using TorchSharp;

namespace DetSeg.Tests.Segmentation;

// The comparison seeds torch's global generator; a test class running beside it that draws from or reseeds that
// generator would make two identical runs differ, so this class runs alone.
[CollectionDefinition("Global torch generator", DisableParallelization = true)]
public class GlobalTorchGeneratorCollection { }

[Collection("Global torch generator")]
public class ClassWeightComparisonTests
{
    [Fact]
    public void Run_WithEqualWeights_RepeatsTheSameTraining_AndReportsEachVector()
    {
        // Same seed, augmentations and batches per run: two runs with the same weights must agree exactly,
        // which is what makes a difference between [1, 1] and [1, 2] attributable to the weights alone.
        var dev = new torch.Device(DeviceType.CPU);
        var pf = new PennFudan(Fixtures.PennFudanFolder(6), download: false);
        var train = new Subset<PennFudanItem>(pf, [0, 1, 2, 3]);
        var val = new Subset<PennFudanItem>(pf, [4]);
        var test = new Subset<PennFudanItem>(pf, [5]);
        var runs = ClassWeightComparison.Run([[1.0, 2.0], [1.0, 2.0], [1.0, 1.0]], train, val, test, imageSize: 16, width: 16, epochs: 2, batchSize: 2, device: dev);
        Assert.Equal(3, runs.Count);
        Assert.Equal(new[] { 1.0, 1.0 }, runs[2].Weights);
        Assert.Equal(runs[0].TestPedestrianIou, runs[1].TestPedestrianIou);
        Assert.Equal(runs[0].ValMeanIou, runs[1].ValMeanIou);
        Assert.Equal(runs[0].BestEpoch, runs[1].BestEpoch);
        Assert.All(runs, r => Assert.InRange(r.Epochs, 1, 2));
        Assert.All(runs.Where(r => r.BestEpoch >= 0), r => Assert.InRange(r.TestPedestrianIou, 0.0, 1.0));
    }

    [Fact]
    public void Run_RejectsWeightVectorsThatAreNotTwoLong()
    {
        var pf = new PennFudan(Fixtures.PennFudanFolder(3), download: false);
        var e = Assert.Throws<ArgumentException>(() => ClassWeightComparison.Run([[1.0, 2.0, 3.0]], pf, pf, pf, 16, 8, 1));
        Assert.Contains("two entries", e.Message);
        Assert.Throws<ArgumentException>(() => ClassWeightComparison.Run([], pf, pf, pf, 16, 8, 1));
    }
}

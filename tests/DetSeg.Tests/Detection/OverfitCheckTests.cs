using DetSeg.Data;
using DetSeg.Detection;
using DetSeg.Tests.Data;
using TorchSharp;

namespace DetSeg.Tests.Detection;

public class OverfitCheckTests
{
    static MCDetection Data(int digits = 20) =>
        new(new MNISTClutter(instance: true, imageSize: 64, maxNumDigits: 3, mnist: new MNIST(Fixtures.MnistFolder(digits), download: false),
                             device: new torch.Device(DeviceType.CPU), numImages: 16));

    [Fact]
    public void Run_StopsAtTheEpochLimit_WithFallingLoss_AndMeasuresMapOnTheSameImages()
    {
        var r = OverfitCheck.Run(Data(), numImages: 8, maxEpochs: 3, targetLoss: 0.0, learningRate: 3e-3, batchSize: 4,
                                 device: new torch.Device(DeviceType.CPU));
        Assert.Equal(3, r.Epochs);
        Assert.False(r.ReachedTarget);
        Assert.True(r.Losses[^1] < r.Losses[0], $"loss {r.Losses[0]} -> {r.Losses[^1]}");
        Assert.InRange(r.Map50, 0.0, 1.0);
        Assert.InRange(r.Map50To95, 0.0, r.Map50);
        Assert.Equal(8, r.Images);
    }

    [Fact]
    public void Run_StopsAsSoonAsTheLossIsBelowTheTarget()
    {
        var r = OverfitCheck.Run(Data(), numImages: 4, maxEpochs: 5, targetLoss: double.MaxValue, batchSize: 4, device: new torch.Device(DeviceType.CPU));
        Assert.Equal(1, r.Epochs);
        Assert.True(r.ReachedTarget);
    }

    [Fact]
    public void Run_RejectsMoreImagesThanTheDatasetHas() =>
        Assert.Contains("numImages", Assert.Throws<ArgumentException>(() => OverfitCheck.Run(Data(), numImages: 17)).Message);
}

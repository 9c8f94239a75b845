using DetSeg.Data;
using TorchSharp;

namespace DetSeg.Tests.Data;

public class ShowTests
{
    static readonly torch.Device Cpu = new(DeviceType.CPU);

    [Fact]
    public void Show_BuildsTitledFigures_ForEveryDataset()
    {
        var pf = new PennFudan(Fixtures.PennFudanFolder(2), download: false);
        Assert.Equal("1: Ped00001", pf.Show(1).Title);
        var seg = new PFSegmentation(pf, imageSize: 16, seed: 1, device: Cpu) { Training = true };
        Assert.Equal("0: Ped00000 (augmented)", seg.Show(0).Title);
        using var mnist = new MNIST(Fixtures.MnistFolder(10), download: false);
        var clutter = new MNISTClutter(imageSize: 48, maxNumDigits: 3, mnist: mnist, device: Cpu);
        Assert.StartsWith("2: has these digits [", clutter.Show(2).Title);
        var det = new MCDetection(clutter);
        var fig = det.Show(2);
        int n = (int)det[2][2].ge(0).sum().item<long>();
        Assert.Equal($"2: {n} digits", fig.Title);
        Assert.Contains("\"shapes\"", fig.ToJson());
    }
}

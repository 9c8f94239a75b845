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
        // The title lists the digits visible in the mask: counted here on the host, pixel by pixel.
        var mask = clutter[2][1].data<long>().ToArray();
        var visible = mask.Where(v => v >= 0).Select(v => v / clutter.MaxNumDigits).Distinct().Order();
        Assert.Equal($"2: has these digits [{string.Join(", ", visible)}]", clutter.Show(2).Title);
        var det = new MCDetection(clutter);
        var fig = det.Show(2);
        var labels = det[2][2].data<long>().Where(l => l >= 0).ToArray();
        Assert.Equal($"2: {labels.Length} digits", fig.Title);
        // One rectangle per digit, each labelled with its class.
        var json = fig.ToJson();
        Assert.Equal(labels.Length, System.Text.RegularExpressions.Regex.Count(json, @"""type"":\s*""rect"""));
        Assert.All(labels, l => Assert.Contains($"\"text\":\"{l}", json.Replace(" ", "")));
    }
}

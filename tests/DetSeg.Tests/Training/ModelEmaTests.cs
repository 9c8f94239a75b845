using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Training;

public class ModelEmaTests
{
    static nn.Module<Tensor, Tensor> Net()
    {
        var net = nn.Sequential(("fc", nn.Linear(1, 1, hasBias: false)), ("bn", nn.BatchNorm1d(1)));
        Set(net, 1.0);
        return net;
    }

    static void Set(nn.Module net, double w)
    {
        using var _ = no_grad();
        net.state_dict()["fc.weight"].fill_(w);
    }

    static double Get(nn.Module net, string name = "fc.weight") => net.state_dict()[name].to(ScalarType.Float64).item<double>();

    [Fact]
    public void Update_FollowsTheRampedDecay_ByHand()
    {
        using var net = Net();
        using var ema = new ModelEma(net, decay: 0.9, tau: 2);
        // d_k = 0.9 (1 - exp(-k / 2)), k = 1, 2, …: hand values of the YOLOv5 ramp
        double d1 = 0.9 * (1 - Math.Exp(-0.5)), d2 = 0.9 * (1 - Math.Exp(-1.0));
        Assert.Equal(d1, ema.CurrentDecay, 12);
        Set(net, 3.0); ema.Update();
        double e1 = d1 * 1.0 + (1 - d1) * 3.0;
        Set(net, 5.0); ema.Update();
        double e2 = d2 * e1 + (1 - d2) * 5.0;
        Assert.Equal(2, ema.Updates);

        using var copy = Net();
        Set(copy, -7.0);
        ema.CopyTo(copy);
        Assert.Equal(e2, Get(copy), 5);
        Assert.Equal(5.0, Get(net), 6);   // the averaged model itself is untouched
    }

    [Fact]
    public void Update_AveragesFloatBuffers_AndCopiesIntegerOnes()
    {
        using var net = Net();
        using var ema = new ModelEma(net, decay: 0.5, tau: 1e-9);   // the ramp is over at once: d = 0.5
        net.train();
        using (var x = tensor(new float[] { 1, 3 }).view(2, 1)) net.call(x).Dispose();   // running_mean: 0.9·0 + 0.1·mean(1, 3) = 0.2
        ema.Update();
        using var copy = Net();
        ema.CopyTo(copy);
        Assert.Equal(0.5 * 0 + 0.5 * 0.2, Get(copy, "bn.running_mean"), 6);
        Assert.Equal(1L, copy.state_dict()["bn.num_batches_tracked"].item<long>());
    }

    [Fact]
    public void Swap_ExchangesLiveAndAveragedWeights_AndSwapsBack()
    {
        using var net = Net();
        using var ema = new ModelEma(net, decay: 0.5, tau: 1e-9);
        Set(net, 3.0); ema.Update();            // average 2
        ema.Swap();
        Assert.Equal(2.0, Get(net), 6);
        ema.Swap();
        Assert.Equal(3.0, Get(net), 6);
        Set(net, 4.0); ema.Update();            // 0.5·2 + 0.5·4: the swaps left the average as it was
        ema.Swap();
        Assert.Equal(3.0, Get(net), 6);
    }

    [Fact]
    public void BadArguments_AreNamed()
    {
        using var net = Net();
        Assert.Equal("decay", Assert.Throws<ArgumentOutOfRangeException>(() => new ModelEma(net, decay: 1.0)).ParamName);
        Assert.Equal("tau", Assert.Throws<ArgumentOutOfRangeException>(() => new ModelEma(net, tau: 0)).ParamName);
        using var ema = new ModelEma(net);
        using var other = nn.Linear(2, 2);
        var e = Assert.Throws<ArgumentException>(() => ema.CopyTo(other));
        Assert.Contains("fc.weight", e.Message);
    }
}

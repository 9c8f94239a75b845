using DetSeg.Detection;
using DetSeg.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static DetSeg.Tests.Interop.InteropModels;
using static TorchSharp.torch;

namespace DetSeg.Tests.Runtime;

public class BatchNormFoldingTests
{
    [Fact]
    public void Fold_HandExample()
    {
        // 1x1 conv, weight 2, no bias; BN mean 1, var 3, eps 1 (std 2), gamma 4, beta 0.5: scale 4/2 = 2,
        // folded weight 2·2 = 4, folded bias (0 − 1)·2 + 0.5 = −1.5
        var conv = nn.Conv2d(1, 1, 1, bias: false);
        var bn = nn.BatchNorm2d(1, eps: 1);
        using (no_grad())
        {
            conv.weight!.fill_(2);
            bn.running_mean!.fill_(1);
            bn.running_var!.fill_(3);
            bn.weight!.fill_(4);
            bn.bias!.fill_(0.5);
        }
        var (w, b) = BatchNormFolding.Fold(conv, bn);
        Assert.Equal(4f, w.item<float>());
        Assert.Equal(-1.5f, b.item<float>());
        bn.eval();
        var x = tensor(new float[] { -1, 0, 3 }).view(1, 1, 1, 3);
        Assert.True(bn.call(conv.call(x)).allclose(BatchNormFolding.Conv2d(conv, x, w, b), atol: 1e-6));
    }

    [Fact]
    public void YOLOv3_FusedEqualsUnfused_AndLeavesTheStateAndTrainingAlone()
    {
        manual_seed(51);
        var model = new YOLOv3(3, 4, new ModelScale(0.25, 0.25));
        RandomizeBatchNorm(model, 52);
        model.eval();
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var x = rand(new long[] { 2, 3, 64, 64 }, generator: new Generator(53));
        using (no_grad())
        {
            var (s0, b0, l0) = model.call(x);
            model.Fuse();
            Assert.All(model.modules().OfType<ConvBlock>(), blk => Assert.True(blk.IsFused));
            var (s1, b1, l1) = model.call(x);
            foreach (var (a, e, name) in new[] { (s1, s0, "scores"), (b1, b0, "boxes"), (l1, l0, "logits") })
            {
                double diff = (a - e).abs().max().item<float>();
                Assert.True(diff <= 1e-5 * Math.Max(1, e.abs().max().item<float>()), $"{name}: max |fused - unfused| {diff:E2}");
            }
        }
        var after = model.state_dict();
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        foreach (var (k, v) in before) Assert.True(v.equal(after[k]).all().item<bool>(), $"{k} changed");

        // a training forward uses BN's batch statistics, as an unfused twin does, and drops the folded copy
        var twin = new YOLOv3(3, 4, new ModelScale(0.25, 0.25));
        twin.load_state_dict(before);
        model.train();
        twin.train();
        Assert.True(model.call(x).scores.allclose(twin.call(x).scores, rtol: 1e-5, atol: 1e-5));
        Assert.All(model.modules().OfType<ConvBlock>(), blk => Assert.False(blk.IsFused));
    }

    [Fact]
    public void Fold_RefusesBnWithoutRunningStats()
    {
        var conv = nn.Conv2d(2, 2, 1);
        var ex = Assert.Throws<ArgumentException>(() => BatchNormFolding.Fold(conv, nn.BatchNorm2d(2, track_running_stats: false)));
        Assert.Contains("running_mean", ex.Message);
    }
}

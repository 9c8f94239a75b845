using DetSeg.Attention;
using static TorchSharp.torch;

namespace DetSeg.Tests.Attention;

[Collection(GlobalRng.Name)]
public class VisionTransformerTests
{
    static VisionTransformerConfig Tiny => new(EmbedDim: 16, HiddenDim: 32, NumHeads: 2, NumLayers: 2, PatchSize: 7);

    [Fact]
    public void MnistConfig_Has305034Parameters()
    {
        // Hand computation (reference README: "dim 64, depth 6, 4 heads, patch 7, 305 k parameters"):
        // per block MHA 4·64·64+4·64 = 16,640, two LayerNorms 256, MLP 64·256+256+256·64+64 = 33,088 → 49,984;
        // six blocks 299,904; patch projection 49·64+64 = 3,200; CLS 64; positions 17·64 = 1,088;
        // head LayerNorm 128 + Linear 64·10+10 = 778. Total 305,034.
        using var vit = new VisionTransformer(VisionTransformerConfig.MNIST);
        Assert.Equal(305_034L, vit.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void Forward_GivesLogitsPerImage_AndAttentionFromTheSamePass()
    {
        manual_seed(1);
        using var vit = new VisionTransformer(Tiny);
        vit.eval();
        var images = randn(4, 1, 28, 28);
        var logits = vit.call(images);
        Assert.Equal(new long[] { 4, 10 }, logits.shape);

        var (logits2, attention) = vit.forward_with_attention(images);
        Assert.True(logits.allclose(logits2, rtol: 0, atol: 1e-6));
        Assert.Equal(2, attention.Length);
        foreach (var a in attention)
        {
            Assert.Equal(new long[] { 4, 17, 17 }, a.shape);
            Assert.True(a.sum(new long[] { -1 }).allclose(ones(4, 17), rtol: 0, atol: 1e-5));
        }
    }

    [Fact]
    public void ClsMaps_AreTheClsRowOverPatches_UpsampledPerPatch()
    {
        manual_seed(2);
        using var vit = new VisionTransformer(Tiny);
        vit.eval();
        var images = randn(2, 1, 28, 28);
        var (_, attention) = vit.forward_with_attention(images);
        var (maps, logits) = AttentionMaps.LastLayerCls(vit, images);
        Assert.Equal(new long[] { 2, 28, 28 }, maps.shape);
        Assert.Equal(new long[] { 2, 10 }, logits.shape);
        // Pixel (9, 16) lies in patch row 1, column 2 = patch 6 = token 7 of the CLS row.
        Assert.Equal(attention[^1][1, 0, 7].item<float>(), maps[1, 9, 16].item<float>(), 6);
        // The map plus CLS's attention to itself is the whole (stochastic) CLS row.
        var grid = AttentionMaps.ClsToPatches(attention[^1], 4);
        Assert.Equal(1.0, (grid.sum(new long[] { 1, 2 }) + attention[^1][.., 0, 0])[0].item<float>(), 5);
    }

    [Fact]
    public void WrongImageSize_ThrowsNamingTheShape()
    {
        using var vit = new VisionTransformer(Tiny);
        var e = Assert.Throws<ArgumentException>(() => vit.call(zeros(2, 3, 28, 28)));
        Assert.Contains("2 x 3 x 28 x 28", e.Message);
        Assert.Throws<ArgumentException>(() => new VisionTransformer(Tiny with { PatchSize = 5 }));
    }

    [Fact]
    public void Overfits64Images()
    {
        // 64 random images with random labels: nothing to generalise, so reaching 100 % training accuracy
        // shows that gradients reach every part (patches, CLS, positions, blocks, head) and the model can learn.
        manual_seed(0);
        var images = randn(64, 1, 28, 28);
        var labels = randint(0, 10, new long[] { 64 });
        using var vit = new VisionTransformer(VisionTransformerConfig.MNIST);
        var optimizer = optim.AdamW(vit.parameters(), lr: 1e-3);
        double accuracy = 0, lastLoss = double.NaN;
        for (int step = 0; step < 200 && !(accuracy == 1.0 && lastLoss < 0.05); step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var logits = vit.call(images);
            var loss = nn.functional.cross_entropy(logits, labels);
            loss.backward();
            optimizer.step();
            accuracy = logits.argmax(1).eq(labels).to_type(float32).mean().item<float>();
            lastLoss = loss.item<float>();
        }
        Assert.Equal(1.0, accuracy);
        Assert.True(lastLoss < 0.05, $"training loss {lastLoss:g3} after 200 full-batch steps");
    }
}

using DetSeg.Attention;
using static TorchSharp.torch;

namespace DetSeg.Tests.Attention;

[Collection(GlobalRng.Name)]
public class AttentionBlockTests
{
    // Tiny sizes: L tokens, B batch, E features, H heads, hidden MLP size.
    const int L = 5, B = 3, E = 8, H = 2, Hidden = 12;

    static AttentionBlock TinyBlock(bool preNorm, int seed = 0)
    {
        manual_seed(seed);
        var block = new AttentionBlock(E, Hidden, H, preNorm: preNorm);
        // LayerNorm starts as the identity affine map (weight 1, bias 0), which would hide a swap of LN1 and
        // LN2: give every parameter random values so each one leaves its own trace in the output.
        using (no_grad())
            foreach (var (_, p) in block.named_parameters())
                p.copy_(randn(p.shape) * 0.5);
        block.eval();
        return block;
    }

    static Dictionary<string, Tensor> Params(AttentionBlock block) =>
        block.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter.detach());

    // Hand-written pieces, independent of TorchSharp's modules: LayerNorm over the last dim (eps 1e-5, biased
    // variance, as nn.LayerNorm), exact-erf GELU, and multi-head scaled-dot-product attention computed head by
    // head from the packed in_proj weights (PyTorch's layout: rows [q; k; v]).
    static Tensor LayerNorm(Tensor x, Tensor w, Tensor b)
    {
        var mean = x.mean(new long[] { -1 }, keepdim: true);
        var variance = (x - mean).pow(2).mean(new long[] { -1 }, keepdim: true);
        return (x - mean) / (variance + 1e-5).sqrt() * w + b;
    }

    static Tensor Gelu(Tensor x) => 0.5 * x * (1 + special.erf(x / Math.Sqrt(2)));

    /// <summary>Returns the attention output [L x B x E] and the head-averaged weights [B x L x L].</summary>
    internal static (Tensor Output, Tensor Weights) HandAttention(Tensor x, Tensor inW, Tensor inB, Tensor outW, Tensor outB, int heads)
    {
        long l = x.shape[0], b = x.shape[1], e = x.shape[2], d = e / heads;
        var xb = x.transpose(0, 1);                                  // [B x L x E]
        var q = xb.matmul(inW[..(int)e].t()) + inB[..(int)e];
        var k = xb.matmul(inW[(int)e..(int)(2 * e)].t()) + inB[(int)e..(int)(2 * e)];
        var v = xb.matmul(inW[(int)(2 * e)..].t()) + inB[(int)(2 * e)..];
        var outs = new List<Tensor>();
        Tensor weightSum = zeros(b, l, l);
        for (int h = 0; h < heads; h++)
        {
            var qh = q[.., .., (int)(h * d)..(int)((h + 1) * d)];   // [B x L x d]
            var kh = k[.., .., (int)(h * d)..(int)((h + 1) * d)];
            var vh = v[.., .., (int)(h * d)..(int)((h + 1) * d)];
            var scores = qh.matmul(kh.transpose(1, 2)) / Math.Sqrt(d); // [B x L x L]
            var a = scores.exp() / scores.exp().sum(new long[] { -1 }, keepdim: true);
            weightSum = weightSum + a;
            outs.Add(a.matmul(vh));
        }
        var concat = cat(outs, -1);                                  // [B x L x E]
        var output = concat.matmul(outW.t()) + outB;
        return (output.transpose(0, 1), weightSum / heads);
    }

    static Tensor Attn(Dictionary<string, Tensor> p, Tensor x) =>
        HandAttention(x, p["attn.in_proj_weight"], p["attn.in_proj_bias"], p["attn.out_proj.weight"], p["attn.out_proj.bias"], H).Output;

    static Tensor Mlp(Dictionary<string, Tensor> p, Tensor x) =>
        Gelu(x.matmul(p["linear.0.weight"].t()) + p["linear.0.bias"]).matmul(p["linear.3.weight"].t()) + p["linear.3.bias"];

    static Tensor LN(Dictionary<string, Tensor> p, string name, Tensor x) => LayerNorm(x, p[name + ".weight"], p[name + ".bias"]);

    static void AssertClose(Tensor expected, Tensor actual, double tol = 1e-5)
    {
        Assert.Equal(expected.shape, actual.shape);
        double diff = (expected - actual).abs().max().item<float>();
        Assert.True(diff < tol, $"max |difference| {diff:g3} ≥ {tol:g3}");
    }

    [Fact]
    public void ParameterCount_256_512_8_Is527104()
    {
        // Golden: ../shared/reference/baseline.json facts.param_counts.attention_block_256_512_8 (PyTorch reference).
        using var block = new AttentionBlock(256, 512, 8);
        Assert.Equal(527_104L, block.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void SelfAttention_MatchesHandWrittenScaledDotProduct()
    {
        // A block whose MLP is zeroed and LN1 is the identity reduces to x + Attn(x) (Pre-LN): isolates the
        // attention call (course bug fixed: query = key = value, output only) from the rest.
        using var block = TinyBlock(preNorm: true);
        using (no_grad())
            foreach (var (name, p) in block.named_parameters())
                if (name.StartsWith("linear.")) p.zero_();
                else if (name == "LN1.weight") p.fill_(1);
                else if (name == "LN1.bias") p.zero_();
        var p2 = Params(block);
        var x = randn(L, B, E);
        var (expectedAttn, expectedWeights) = HandAttention(LayerNorm(x, ones(E), zeros(E)), p2["attn.in_proj_weight"], p2["attn.in_proj_bias"], p2["attn.out_proj.weight"], p2["attn.out_proj.bias"], H);
        var (y, w) = block.forward_with_weights(x);
        AssertClose(x + expectedAttn, y);
        AssertClose(expectedWeights, w);
    }

    [Fact]
    public void PreLN_MatchesExactFormula_AndNotTheSwappedOrder()
    {
        using var block = TinyBlock(preNorm: true);
        var p = Params(block);
        var x = randn(L, B, E);
        // x = x + Attn(LN1(x)); x = x + MLP(LN2(x))
        var h = x + Attn(p, LN(p, "LN1", x));
        var expected = h + Mlp(p, LN(p, "LN2", h));
        var y = block.call(x);
        AssertClose(expected, y);

        // The same formula with LN1 and LN2 exchanged must NOT match: the test can tell the norms apart.
        var hs = x + Attn(p, LN(p, "LN2", x));
        var swapped = hs + Mlp(p, LN(p, "LN1", hs));
        Assert.True((swapped - y).abs().max().item<float>() > 1e-2);
    }

    [Fact]
    public void PostLN_MatchesExactFormula_AndDiffersFromPreLN()
    {
        using var block = TinyBlock(preNorm: false);
        var p = Params(block);
        var x = randn(L, B, E);
        // x = LN1(x + Attn(x)); x = LN2(x + MLP(x))
        var h = LN(p, "LN1", x + Attn(p, x));
        var expected = LN(p, "LN2", h + Mlp(p, h));
        var y = block.call(x);
        AssertClose(expected, y);

        using var pre = TinyBlock(preNorm: true);          // same seed, so the same parameter values
        Assert.True((pre.call(x) - y).abs().max().item<float>() > 1e-2);
    }

    [Fact]
    public void ForwardWithWeights_GivesSameOutputAsForward_AndRowStochasticWeights()
    {
        using var block = TinyBlock(preNorm: true);
        var x = randn(L, B, E);
        var (y, w) = block.forward_with_weights(x);
        AssertClose(block.call(x), y, 1e-6);
        Assert.Equal(new long[] { B, L, L }, w.shape);
        AssertClose(ones(B, L), w.sum(new long[] { -1 }), 1e-5);
    }

    [Fact]
    public void Layout_IsSequenceFirst_BatchItemsDoNotMix()
    {
        // [L x B x E]: running one batch column alone gives the same tokens as running it with the others.
        using var block = TinyBlock(preNorm: true);
        var x = randn(L, B, E);
        var all = block.call(x);
        var one = block.call(x[.., 1..2, ..]);
        AssertClose(all[.., 1..2, ..], one);
    }

    [Fact]
    public void WrongShape_ThrowsNamingTheShape()
    {
        using var block = new AttentionBlock(E, Hidden, H);
        var e = Assert.Throws<ArgumentException>(() => block.call(randn(L, B, E + 1)));
        Assert.Contains("5 x 3 x 9", e.Message);
        Assert.Throws<ArgumentException>(() => new AttentionBlock(10, Hidden, 3));
    }
}

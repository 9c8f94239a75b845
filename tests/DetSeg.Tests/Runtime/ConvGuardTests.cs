using DetSeg.Detection;
using DetSeg.Runtime;
using DetSeg.Segmentation;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Tests.Runtime;

/// <summary>
/// libtorch 2.10's oneDNN convolutions gave NaN or wrong input gradients (and, above 16 channels, wrong outputs)
/// for channel counts that are not multiples of 16 on this project's Zen 5 CPU, in some runs and not others.
/// Every check here repeats the pass many times and compares with a float64 reference written out by hand
/// (im2col + matmul, or an einsum for the 2x2 stride-2 transposed conv), so that an intermittent defect shows.
/// </summary>
public class ConvGuardTests
{
    const int Repeats = 40;

    // (in, out, kernel, stride, groups, transposed, input gradient): the shapes measured bad without the guard, the models'
    // narrow layers (U-Net width 2 in tests, YOLOv3 x0.25's 8-channel layers, heads with 2..45 outputs) and blocks
    // of exactly 16 as a control.
    public static TheoryData<long, long, long, long, long, bool, bool> Shapes => new()
    {
        { 2, 2, 3, 1, 1, false, true },
        { 8, 8, 3, 1, 1, false, true },
        { 16, 2, 3, 1, 1, false, true },
        { 16, 24, 3, 1, 1, false, true },
        { 24, 16, 3, 1, 1, false, true },
        { 20, 20, 3, 1, 1, false, true },
        { 3, 8, 3, 1, 1, false, true },
        { 1, 4, 3, 1, 1, false, true },
        { 8, 16, 3, 2, 1, false, true },
        { 16, 8, 1, 1, 1, false, true },
        { 32, 45, 1, 1, 1, false, true },
        { 3, 3, 5, 1, 3, false, true },
        { 16, 16, 3, 1, 1, false, true },
        { 24, 24, 2, 2, 1, true, true },
        { 4, 2, 2, 2, 1, true, true },
        { 8, 4, 2, 2, 1, true, true },
        // First layers (image input, no input gradient) stay on oneDNN: output and weight gradient must hold there.
        { 3, 8, 3, 1, 1, false, false },
        { 3, 16, 3, 2, 1, false, false },
        { 1, 4, 3, 1, 1, false, false },
        { 3, 32, 3, 1, 1, false, false },
        { 8, 16, 3, 2, 1, false, false },
        { 12, 12, 3, 1, 1, false, true },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void GuardedConv_MatchesFloat64_InEveryRepeat(long cin, long cout, long k, long stride, long groups, bool transposed, bool inputGrad)
    {
        manual_seed(cin * 1000 + cout * 10 + k);
        Convolution conv = transposed
            ? nn.ConvTranspose2d(cin, cout, k, stride: stride)
            : nn.Conv2d(cin, cout, k, stride: stride, padding: k / 2, groups: groups);
        ConvGuard.Protect(conv);
        for (int i = 0; i < Repeats; i++)
        {
            using var scope = NewDisposeScope();
            conv.zero_grad();
            var x = randn(2, cin, 8, 8).requires_grad_(inputGrad);                 // [2 x cin x 8 x 8]
            var y = conv.call(x);
            var gy = randn(y.shape);
            (y * gy).sum().backward();

            var x64 = x.detach().to(ScalarType.Float64).requires_grad_(true);
            var w64 = conv.weight!.detach().to(ScalarType.Float64).requires_grad_(true);
            var b64 = conv.bias!.detach().to(ScalarType.Float64);
            var y64 = transposed ? RefConvTranspose2x2(x64, w64, b64) : RefConv(x64, w64, b64, k, stride, k / 2, groups);
            (y64 * gy.to(ScalarType.Float64)).sum().backward();

            string at = $"{(transposed ? "ConvTranspose2d" : "Conv2d")}({cin}, {cout}, k{k}, s{stride}, g{groups}) repeat {i}";
            AssertClose(y64, y, at + " output");
            if (inputGrad) AssertClose(x64.grad!, x.grad!, at + " input gradient");
            AssertClose(w64.grad!, conv.weight!.grad!, at + " weight gradient");
            Assert.True(y.is_contiguous(), at + ": the guarded output keeps the usual NCHW layout");
        }
    }

    [Fact]
    public void FunctionalConv2d_DepthwiseBlur_MatchesFloat64()
    {
        // TensorTransforms.GaussianBlur's call: one 1-channel kernel per channel (groups = C = 3).
        manual_seed(3);
        var w = rand(3, 1, 5, 5);
        for (int i = 0; i < Repeats; i++)
        {
            using var scope = NewDisposeScope();
            var x = rand(1, 3, 36, 36);
            var y = ConvGuard.Conv2d(x, w, groups: 3);
            var y64 = RefConv(x.to(ScalarType.Float64), w.to(ScalarType.Float64), null, 5, 1, 0, 3);
            AssertClose(y64, y, $"depthwise repeat {i}");
        }
    }

    [Fact]
    public void Protect_GuardsOnlyUnblockedChannelCounts_AndIsIdempotent()
    {
        var wide = nn.Conv2d(16, 32, 3);
        var narrow = nn.Conv2d(32, 8, 3);
        var seq = nn.Sequential(wide, narrow);
        ConvGuard.Protect(seq);
        ConvGuard.Protect(seq);
        Assert.True(ConvGuard.IsProtected(narrow));
        Assert.False(ConvGuard.IsProtected(wide));
        Assert.True(ConvGuard.NeedsGuard(3, 3, groups: 3));
        Assert.False(ConvGuard.NeedsGuard(32, 64, groups: 2));
        // Through the Sequential the guarded layer still gives [B x C x H x W] values a view can reshape.
        using var _ = no_grad();
        var y = seq.call(randn(2, 16, 9, 9));
        Assert.Equal(new long[] { 2, 8, 5, 5 }, y.shape);
        Assert.Equal(2 * 8 * 25, y.view(-1).shape[0]);
        // A wrong channel count still gets the module's own error naming it (the guard lets it through).
        var e = Assert.ThrowsAny<Exception>(() => narrow.call(randn(2, 3, 9, 9)));
        Assert.Contains("32", e.Message);
    }

    [Fact]
    public void Models_GuardEveryUnblockedConv()
    {
        var models = new (string name, nn.Module model)[]
        {
            ("SemanticSegmentor w2", new SemanticSegmentor(1, 3, width: 2)),
            ("SemanticSegmentor w16", new SemanticSegmentor(3, 2, width: 16)),
            ("SimpleSemanticSegmentor", new SimpleSemanticSegmentor(3, 2)),
            ("YOLOv3 x0.25", new BaseYOLOv3(3, 3, 10, new ModelScale(0.25, 0.25))),
            ("SimpleDetector", new SimpleDetector(3, 3, 10)),
            ("Localizer", new Localizer(1, 10)),
        };
        foreach (var (name, model) in models)
        {
            var unguarded = model.named_modules()
                .Where(m => m.module is Convolution c && ConvGuard.NeedsGuard(c.in_channels, c.out_channels, c.groups) && !ConvGuard.IsProtected(c))
                .Select(m => m.name).ToList();
            Assert.True(unguarded.Count == 0, $"{name}: unguarded narrow convs {string.Join(", ", unguarded)}");
        }
    }

    [Fact]
    public void NarrowUNet_Gradients_MatchFloat64_InEveryRepeat()
    {
        // The model of ModelTests.SemanticSegmentor_Backward_ReachesTheFirstLayer, whose first-layer gradient
        // was NaN in some runs: every parameter's gradient against the same model in float64.
        manual_seed(7);
        var m32 = new SemanticSegmentor(1, 3, width: 2);
        var m64 = new SemanticSegmentor(1, 3, width: 2);
        m64.load_state_dict(m32.state_dict());
        m64.to(ScalarType.Float64);
        var p32 = m32.named_parameters().ToList();
        var p64 = m64.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        for (int i = 0; i < 15; i++)
        {
            using var scope = NewDisposeScope();
            m32.zero_grad(); m64.zero_grad();
            var x = randn(2, 1, 16, 16);
            m32.call(x).square().sum().backward();
            m64.call(x.to(ScalarType.Float64)).square().sum().backward();
            foreach (var (name, p) in p32)
                AssertClose(p64[name].grad!, p.grad!, $"repeat {i}: grad of {name}", rtol: 2e-3); // float32 sums through 20 layers
        }
    }

    // Convolution as im2col + matmul per group: [B x Cin x H x W] -> [B x Cout x Ho x Wo].
    static Tensor RefConv(Tensor x, Tensor w, Tensor? b, long k, long stride, long pad, long groups)
    {
        long batch = x.shape[0], cin = x.shape[1] / groups, cout = w.shape[0] / groups;
        long ho = (x.shape[2] + 2 * pad - k) / stride + 1, wo = (x.shape[3] + 2 * pad - k) / stride + 1;
        var outs = new List<Tensor>();
        for (long g = 0; g < groups; g++)
        {
            var cols = nn.functional.unfold(x.narrow(1, g * cin, cin), (k, k), padding: (pad, pad), stride: (stride, stride)); // [B x cin·k·k x L]
            outs.Add(w.narrow(0, g * cout, cout).reshape(cout, -1).matmul(cols));  // [B x cout x L]
        }
        var y = cat(outs, 1).view(batch, cout * groups, ho, wo);
        return b is null ? y : y + b.view(1, -1, 1, 1);
    }

    // A 2x2 stride-2 transposed conv writes each input pixel's 2x2 patch without overlap:
    // y[b, o, 2h+k, 2w+l] = sum_c x[b, c, h, w] W[c, o, k, l] + bias[o].
    static Tensor RefConvTranspose2x2(Tensor x, Tensor w, Tensor b)
    {
        long batch = x.shape[0], h = x.shape[2], wd = x.shape[3], o = w.shape[1];
        var y = einsum("bchw,cokl->bohkwl", x, w).reshape(batch, o, 2 * h, 2 * wd);
        return y + b.view(1, -1, 1, 1);
    }

    static void AssertClose(Tensor expected64, Tensor actual, string what, double rtol = 1e-4)
    {
        var a = actual.detach().to(ScalarType.Float64);
        Assert.True(a.isfinite().all().item<bool>(), $"{what}: not finite");
        double scale = Math.Max(1.0, expected64.abs().max().item<double>());
        double diff = (a - expected64.detach()).abs().max().item<double>();
        Assert.True(diff <= rtol * scale, $"{what}: max |float32 - float64| = {diff:G3} (scale {scale:G3})");
    }
}

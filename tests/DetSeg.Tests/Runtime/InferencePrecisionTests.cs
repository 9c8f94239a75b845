using DetSeg.Detection;
using DetSeg.Inference;
using DetSeg.Runtime;
using DetSeg.Segmentation;
using TorchSharp;
using static DetSeg.Tests.Interop.InteropModels;
using static TorchSharp.torch;

namespace DetSeg.Tests.Runtime;

/// <summary>
/// bfloat16 inference: outputs stay float32 and close to the float32 model's. bfloat16 keeps 8 significant bits, so
/// every stored weight and activation is off by up to 2^-9 (0.2 %) relative; through ~20 layers such independent
/// roundings grow like sqrt(20) · 0.2 % ≈ 1 % of the logits' scale (oneDNN accumulates each dot product in float32, so
/// the sums add little). The bounds (3 % relative L2, 98 % of masks) are about 3x that estimate: a model run in float32
/// by mistake fails the "changed at all" check, one with a real defect (wrong layout, lost scale) is off by far more.
/// </summary>
[Collection(GlobalRng.Name)]   // Predictor_Bf16_… builds both models after manual_seed(42): a draw from a parallel class in between gave 0 % agreement once in CI
public class InferencePrecisionTests
{
    static readonly torch.Device Cpu = new(DeviceType.CPU);

    static double RelativeError(Tensor actual, Tensor expected) =>
        (actual - expected).norm().item<float>() / expected.norm().item<float>();

    [Theory]
    [InlineData("bf16", InferencePrecision.BFloat16)]
    [InlineData("BFloat16", InferencePrecision.BFloat16)]
    [InlineData("fp32", InferencePrecision.Float32)]
    [InlineData(" float32 ", InferencePrecision.Float32)]
    public void Parse_TakesTheCliSpellings(string text, InferencePrecision expected)
    {
        Assert.Equal(expected, InferencePrecisions.Parse(text));
        Assert.Equal(expected == InferencePrecision.BFloat16 ? ScalarType.BFloat16 : ScalarType.Float32, expected.ToScalarType());
    }

    [Fact]
    public void Parse_NamesTheAcceptedValues()
    {
        var ex = Assert.Throws<FormatException>(() => InferencePrecisions.Parse("fp16"));
        Assert.Contains("fp16", ex.Message);
        Assert.Contains("bf16", ex.Message);
    }

    [Fact]
    public void UNet_Bf16_LogitsAreFloat32AndCloseToFloat32()
    {
        manual_seed(11);
        var unet = new SemanticSegmentor(3, 2, width: 16);
        RandomizeBatchNorm(unet, 12);
        unet.eval();
        var x = randn(new long[] { 2, 3, 64, 64 }, generator: new Generator(13));
        using var _ = no_grad();
        var expected = unet.call(x);
        unet.WithPrecision(InferencePrecision.BFloat16);
        Assert.Equal(ScalarType.BFloat16, unet.parameters().First().dtype);
        var actual = unet.call(x);
        Assert.Equal(ScalarType.Float32, actual.dtype);
        Assert.Equal(expected.shape, actual.shape);
        double rel = RelativeError(actual, expected);
        Assert.True(rel < 0.03, $"relative L2 error {rel:F4}");
        Assert.True(rel > 0, "bfloat16 must change something (else the model did not run in bfloat16)");
        // masks: pixels whose two logits are nearly tied may flip; the rest must agree
        double agree = actual.argmax(1).eq(expected.argmax(1)).to(float32).mean().item<float>();
        Assert.True(agree > 0.98, $"argmax agreement {agree:P2}");
    }

    [Fact]
    public void YOLOv3_Bf16_DecodesInFloat32AndStaysClose()
    {
        manual_seed(21);
        var model = new YOLOv3(3, 4, new ModelScale(0.25, 0.25));
        RandomizeBatchNorm(model, 22);
        model.eval();
        var x = rand(new long[] { 2, 3, 96, 96 }, generator: new Generator(23));
        using var _ = no_grad();
        var (s32, b32, l32) = model.call(x);
        model.WithPrecision(InferencePrecision.BFloat16);
        Assert.Equal(ScalarType.Float32, model.anchors.dtype); // priors are not rounded
        var (s16, b16, l16) = model.call(x);
        foreach (var t in new[] { s16, b16, l16 }) Assert.Equal(ScalarType.Float32, t.dtype);
        Assert.True(RelativeError(s16, s32) < 0.03, $"objectness {RelativeError(s16, s32):F4}");
        Assert.True(RelativeError(l16, l32) < 0.03, $"class logits {RelativeError(l16, l32):F4}");
        // centres: a cell is 1/12 .. 1/3 of the image here; a bfloat16 decode would be off by up to 1/4 cell
        double centre = (b16[.., .., ..2] - b32[.., .., ..2]).abs().max().item<float>();
        Assert.True(centre < 0.01, $"max centre difference {centre:F4} (image fractions)");
        double size = ((b16[.., .., 2..] / b32[.., .., 2..]).log().abs()).max().item<float>();
        Assert.True(size < 0.1, $"max |log size ratio| {size:F4}");
        using var det = model.Detect(x, 0.5);
        Assert.Equal(ScalarType.Float32, det.Scores.dtype);
    }

    [Fact]
    public void YOLOv3_Bf16_FoldsBatchNormFromTheFloat32Statistics()
    {
        // Folding after the conversion would fold a mean and variance already rounded to bfloat16: two roundings.
        // Expected: the float32 fold (BatchNormFolding, float64 arithmetic), rounded once.
        manual_seed(31);
        var model = new YOLOv3(3, 4, new ModelScale(0.25, 0.25));
        RandomizeBatchNorm(model, 32);
        model.eval();
        var blocks = model.modules().OfType<DetSeg.Detection.ConvBlock>().ToList();
        var expected = blocks.Select(b =>
        {
            var (w, bias) = BatchNormFolding.Fold(b.conv, b.bn);
            return (w.to(ScalarType.BFloat16), bias.to(ScalarType.BFloat16));
        }).ToList();
        model.WithPrecision(InferencePrecision.BFloat16).Fuse(); // Predictor's order: Fuse must not refold rounded weights
        Assert.NotEmpty(blocks);
        for (int i = 0; i < blocks.Count; i++)
        {
            Assert.True(blocks[i].IsFused, $"block {i} runs BN unfolded in bfloat16");
            var (w, bias) = blocks[i].Folded;
            Assert.Equal(ScalarType.BFloat16, w!.dtype);
            Assert.True(w.eq(expected[i].Item1).all().item<bool>(), $"block {i}: folded weight differs from the float32 fold");
            Assert.True(bias!.eq(expected[i].Item2).all().item<bool>(), $"block {i}: folded bias differs from the float32 fold");
        }
    }

    [Fact]
    public void ConvGuard_RoutesAtRiskBf16PassesThroughFloat64()
    {
        // 24 -> 24, 3x3: oneDNN's float32 output was wrong in 60/60 runs; bfloat16 uses the same blocked kernels
        manual_seed(31);
        var conv = nn.Conv2d(24, 24, 3, padding: 1);
        ConvGuard.Protect(conv);
        conv.to(ScalarType.BFloat16);
        var x = randn(new long[] { 2, 24, 8, 8 }, generator: new Generator(32)).to(ScalarType.BFloat16);
        using var _ = no_grad();
        for (int i = 0; i < 20; i++)
        {
            var y = conv.call(x);
            Assert.Equal(ScalarType.BFloat16, y.dtype);
            // reference: the same bfloat16 values in float64, rounded once to bfloat16 at the end
            var expected = nn.functional.conv2d(x.to(float64), conv.weight!.to(float64), conv.bias!.to(float64), padding: [1, 1]);
            var diff = (y.to(float64) - expected).abs();
            var bound = expected.abs() * Math.Pow(2, -8) + 1e-6; // one bfloat16 rounding
            Assert.True(diff.le(bound).all().item<bool>(), $"repeat {i}: max diff {diff.max().item<double>():E3}");
        }
    }

    [Theory]
    [InlineData(3, 8, 128)]    // the ×0.25 detector's stem: 50 % relative error from oneDNN's bfloat16 kernel
    [InlineData(16, 8, 64)]    // 20 %
    public void Bf16ConvsWithNarrowOutputs_AreRoutedThroughFloat64_PlainAndFolded(int cin, int cout, int size)
    {
        // Inputs with fewer than 16 output channels in bfloat16: fine in float32 inference, wrong in bfloat16
        // (ConvGuard.OutputAtRisk). Both the hooked module and the folded ConvBlock path must take the float64 route.
        manual_seed(41);
        using var _ = no_grad();
        var x = rand(new long[] { 2, cin, size, size }, generator: new Generator(42)).to(ScalarType.BFloat16);
        var conv = nn.Conv2d(cin, cout, 3, padding: 1);
        ConvGuard.Protect(conv);
        conv.to(ScalarType.BFloat16);
        var expected = nn.functional.conv2d(x.to(float64), conv.weight!.to(float64), conv.bias!.to(float64), padding: [1, 1]);
        var bound = expected.abs() * Math.Pow(2, -8) + 1e-6; // one bfloat16 rounding of the float64 result
        var plain = (conv.call(x).to(float64) - expected).abs();
        Assert.True(plain.le(bound).all().item<bool>(), $"module: max diff {plain.max().item<double>():E3}");
        var folded = (BatchNormFolding.Conv2d(conv, x, conv.weight!, conv.bias!).to(float64) - expected).abs();
        Assert.True(folded.le(bound).all().item<bool>(), $"folded path: max diff {folded.max().item<double>():E3}");
    }

    [Fact]
    public void Predictor_Bf16_MasksMatchFloat32AlmostEverywhere()
    {
        string dir = TestPaths.NewTempDir();
        var g = new Generator(41);
        var img = (rand(new long[] { 3, 48, 80 }, generator: g) * 255).to(ScalarType.Byte);
        DetSeg.Data.Formats.ImageFiles.WritePng(Path.Combine(dir, "a.png"), img);
        Tensor Mask(InferencePrecision p)
        {
            manual_seed(42);
            var unet = new SemanticSegmentor(3, 2, width: 16);
            RandomizeBatchNorm(unet, 43);
            var predictor = new Predictor(unet, 64, Cpu, p);
            Assert.Equal(p, predictor.Precision);
            return predictor.Predict([Path.Combine(dir, "a.png")]).Single().Mask!;
        }
        var m32 = Mask(InferencePrecision.Float32);
        var m16 = Mask(InferencePrecision.BFloat16);
        Assert.Equal(new long[] { 48, 80 }, m16.shape);
        double agree = m16.eq(m32).to(float32).mean().item<float>();
        Assert.True(agree > 0.98, $"mask agreement {agree:P2}");
    }
}

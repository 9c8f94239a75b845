using DetSeg.Attention;
using DetSeg.Detection;
using DetSeg.Segmentation;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Tests.Interop;

/// <summary>The C# twins of tools/fixtures/interop_models.py, and the fixture files that script made with PyTorch 1.13.</summary>
static class InteropModels
{
    public static string Fixtures => Path.Combine(TestPaths.RepoRoot, "tests", "DetSeg.Tests", "Interop", "fixtures");
    public static string Fixture(string name) => Path.Combine(Fixtures, name);

    public static nn.Module<Tensor, Tensor> UNet() => new SemanticSegmentor(3, 2, width: 1);
    public static YOLOv3 Yolo() => new(3, 2, new ModelScale(1.0 / 32, 0.01));
    public static VisionTransformer ViT() => new(new VisionTransformerConfig(EmbedDim: 16, HiddenDim: 32, NumChannels: 1, NumHeads: 2,
        NumLayers: 2, NumClasses: 10, PatchSize: 7, ImageSize: 28));

    public static nn.Module Build(string kind) => kind switch
    {
        "unet" => UNet(),
        "yolo" => Yolo(),
        "vit" => ViT(),
        _ => throw new ArgumentException(kind),
    };

    /// <summary>Eval-mode outputs by the names the fixture's io file uses.</summary>
    public static Dictionary<string, Tensor> Outputs(nn.Module model, Tensor input)
    {
        model.eval();
        using var _ = no_grad();
        if (model is YOLOv3 yolo)
        {
            var (s, b, l) = yolo.call(input);
            return new() { ["scores"] = s, ["boxes"] = b, ["logits"] = l };
        }
        return new() { ["output"] = ((nn.Module<Tensor, Tensor>)model).call(input) };
    }

    /// <summary>Random BatchNorm statistics (fresh ones are 0/1 and would hide a mix-up of running_mean and running_var).</summary>
    public static void RandomizeBatchNorm(nn.Module model, long seed)
    {
        var g = new Generator((ulong)seed);
        using var _ = no_grad();
        int found = 0;
        foreach (var m in model.modules().OfType<DetSeg.Runtime.BatchNorm2d>())
        {
            found++;
            long n = m.running_mean!.shape[0];
            m.weight!.copy_(rand(n, generator: g) + 0.5);
            m.bias!.copy_(randn(n, generator: g) * 0.1);
            m.running_mean.copy_(randn(n, generator: g) * 0.1);
            m.running_var!.copy_(rand(n, generator: g) + 0.5);
        }
        // Norm layers of another type (TorchSharp's own) would otherwise keep 0/1 statistics silently.
        var others = model.modules().Where(m => m.GetType().Name.StartsWith("BatchNorm") && m is not DetSeg.Runtime.BatchNorm2d).ToList();
        Assert.True(others.Count == 0, $"{model.GetType().Name}: {others.Count} BatchNorm layers of type {others.FirstOrDefault()?.GetType().FullName} were not randomized ({found} were)");
    }

    /// <summary>max |a - b|, after asserting shapes agree.</summary>
    public static double MaxDiff(Tensor a, Tensor b)
    {
        Assert.Equal(b.shape, a.shape);
        return (a - b).abs().max().item<float>();
    }

    /// <summary>Asserts |a - b| ≤ 1e-5 + 1e-5·|b| everywhere (numpy/torch allclose at 1e-5).</summary>
    public static void AssertClose(Tensor actual, Tensor expected, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        bool close = actual.allclose(expected, rtol: 1e-5, atol: 1e-5);
        Assert.True(close, $"{what}: max |diff| {MaxDiff(actual, expected):g} exceeds 1e-5");
    }
}

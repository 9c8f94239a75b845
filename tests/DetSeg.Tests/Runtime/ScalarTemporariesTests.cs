using System.Reflection;
using DetSeg.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Runtime;

/// <summary>
/// Guards the root of issue 11 item 1: no DetSeg method that runs per item, per batch or per step makes a
/// <see cref="Scalar"/> that a GC on another thread could free mid-call (TORCHSHARP-NOTES.md §2).
/// </summary>
public class ScalarTemporariesTests
{
    /// <summary>
    /// Methods allowed to make temporary Scalars: each runs once per run, figure or evaluation, not per batch of a
    /// training loop, so a failure there would be rare and would not lose a training run. Keys are
    /// <see cref="ScalarIlScan.SourceName"/>s (lambdas and async bodies count as their host method).
    /// </summary>
    static readonly Dictionary<string, string> Allowlist = new()
    {
        ["DetSeg.Attention.VisionTransformer.ctor"] = "constructor: initial weights",
        ["DetSeg.Detection.CustomYOLOv3Loss.ctor"] = "constructor: per-cell scales",
        ["DetSeg.Attention.AttentionMaps.Overlay"] = "plot",
        ["DetSeg.Plots.TensorImage.RgbPng"] = "plot (image encoding)",
        ["DetSeg.Segmentation.SegmentationPlots.Confusion"] = "plot",
        ["DetSeg.Segmentation.SegmentationPlots.Overlays"] = "plot",
        ["DetSeg.Metrics.ClassificationMetrics.Table"] = "printed report (ToString), once per evaluation",
        ["DetSeg.Data.BatchedStdMean.Compute"] = "dataset statistics, once before training",
        ["DetSeg.Detection.Anchors.BoxSizes"] = "anchor setup, once before training",
        ["DetSeg.Detection.Anchors.KMeansOnce"] = "anchor setup (k-means), once before training",
        ["DetSeg.Detection.Anchors.Lattice"] = "anchor setup, once before training",
        ["DetSeg.Detection.Anchors.ToPixels"] = "anchor setup, once before training",
        ["DetSeg.Detection.Letterbox.Load"] = "loads one demo image from a file (notebook 03), not a loader path",
        ["DetSeg.Data.Formats.AnnotatedAdapters.FromMnistClutter"] = "one-time export to the annotated format",
        ["DetSeg.Data.Formats.CocoWriter.Write"] = "one-time export of a COCO folder",
        ["DetSeg.Data.Formats.ImageFiles.WritePng"] = "one-time export (files)",
        ["DetSeg.Data.Formats.ImageFiles.WriteMaskPng"] = "one-time export (files)",
    };

    [Fact]
    public void DetSeg_MakesNoTemporaryScalar_OutsideTheAllowlist()
    {
        var found = ScalarIlScan.Scan(typeof(Scalars).Assembly);
        // A module with an unsafe forward is never allowed, not even from an allowlisted constructor: it runs every batch.
        var offending = found.Where(f => f.MakesUnsafeModule || !Allowlist.ContainsKey(f.Method))
            .GroupBy(f => f.Method).OrderBy(g => g.Key)
            .Select(g => $"{g.Key}: {string.Join("; ", g.Select(f => $"IL_{f.Offset:x4} {f.Call}").Distinct())}")
            .ToList();
        Assert.True(offending.Count == 0,
            $"{offending.Count} DetSeg methods make temporary Scalars (hold them in Runtime.Scalars or a field, `using var s = x.ToScalar()`, " +
            $"pass a tensor, or the explicit-alpha overload; allowlist only what runs once):\n{string.Join("\n", offending)}");
        // An entry whose method no longer makes a temporary (or was renamed) must go, so the list stays what it says.
        var stale = Allowlist.Keys.Where(k => !found.Any(f => f.Method == k)).ToList();
        Assert.True(stale.Count == 0, $"allowlist entries with nothing to allow: {string.Join(", ", stale)}");
    }

    /// <summary>Patterns the scanner must judge right (compiled in this test assembly).</summary>
    static class Fixture
    {
        public static Tensor ImplicitNumber(Tensor x) => x.mul(2);                           // temporary
        public static Tensor HiddenAlpha(Tensor a, Tensor b) => a + b;                       // temporary inside TorchSharp
        public static Tensor UnheldLocal(Tensor x) { var s = 2.ToScalar(); return x.mul(s); } // dead after its handle is read
        public static Tensor UsingLocal(Tensor x) { using var s = 2.ToScalar(); return x.mul(s); }
        public static Tensor KeptAlive(Tensor x) { var s = 2.ToScalar(); var y = x.mul(s); GC.KeepAlive(s); return y; }
        public static Tensor Cached(Tensor x) => x.mul(Scalars.TwoL);
        public static Tensor ExplicitAlpha(Tensor a, Tensor b) => a.add(b, Scalars.OneL);
        public static Tensor TensorOperands(Tensor a, Tensor b) => a.sub(b).div(b);
        public static Func<Tensor, Tensor> Lambda() => x => x.clamp(0, 1);                   // counts as Lambda's own
        public static nn.Module<Tensor, Tensor> UnsafeModule() => nn.LeakyReLU(0.1);         // its forward converts 0.1 per call
    }

    [Fact]
    public void Scanner_FlagsTemporaries_AndNotHeldScalars()
    {
        var found = ScalarIlScan.Scan(typeof(Fixture).Assembly)
            .Where(f => f.Method.StartsWith(typeof(Fixture).FullName!))
            .Select(f => f.Method[(typeof(Fixture).FullName!.Length + 1)..])
            .Distinct().OrderBy(n => n).ToArray();
        Assert.Equal(new[] { "HiddenAlpha", "ImplicitNumber", "Lambda", "UnheldLocal", "UnsafeModule" }, found);
        Assert.Single(ScalarIlScan.Scan(typeof(Fixture).Assembly), f => f.MakesUnsafeModule && f.Method.EndsWith(".UnsafeModule"));
    }

    /// <summary>What TorchSharp 0.107's IL says (see its source: <c>add(Tensor target) =&gt; add(target, 1)</c>).</summary>
    [Fact]
    public void TorchSharp_UnsafeMethodsAndModules_AreTheKnownOnes()
    {
        var t = typeof(Tensor);
        Assert.True(ScalarIlScan.IsUnsafe(t.GetMethod("add", [typeof(Tensor)])!));
        Assert.True(ScalarIlScan.IsUnsafe(t.GetMethod("op_Addition", [typeof(Tensor), typeof(Tensor)])!));
        Assert.False(ScalarIlScan.IsUnsafe(t.GetMethod("add", [typeof(Tensor), typeof(Scalar)])!));
        Assert.False(ScalarIlScan.IsUnsafe(t.GetMethod("sub", [typeof(Tensor)])!));
        Assert.False(ScalarIlScan.IsUnsafe(t.GetMethod("mul", [typeof(Scalar)])!));
        Assert.True(ScalarIlScan.IsUnsafe(typeof(nn.functional).GetMethod("leaky_relu", [typeof(Tensor), typeof(double), typeof(bool)])!));

        var modules = ScalarIlScan.UnsafeModuleTypes();
        Assert.Contains(typeof(TorchSharp.Modules.LeakyReLU), modules);
        Assert.Contains(typeof(TorchSharp.Modules.BatchNorm2d), modules);
        // The TorchSharp modules DetSeg's models call every forward: their forward makes no temporary Scalar.
        Type[] used =
        [
            typeof(TorchSharp.Modules.Conv2d), typeof(TorchSharp.Modules.ConvTranspose2d), typeof(TorchSharp.Modules.MaxPool2d),
            typeof(TorchSharp.Modules.Upsample), typeof(TorchSharp.Modules.Dropout), typeof(TorchSharp.Modules.LayerNorm),
            typeof(TorchSharp.Modules.Linear), typeof(TorchSharp.Modules.GELU), typeof(TorchSharp.Modules.ReLU),
            typeof(TorchSharp.Modules.Softmax), typeof(TorchSharp.Modules.Sequential), typeof(TorchSharp.Modules.Flatten),
        ];
        Assert.Empty(used.Intersect(modules));
    }

    /// <summary>Every DetSeg model is built only from modules whose forward makes no temporary Scalar.</summary>
    [Fact]
    public void DetSegModels_ContainNoModuleWithAnUnsafeForward()
    {
        var unsafeTypes = ScalarIlScan.UnsafeModuleTypes().ToHashSet();
        nn.Module[] models =
        [
            new DetSeg.Segmentation.SemanticSegmentor(3, 2, width: 16),
            new DetSeg.Segmentation.SimpleSemanticSegmentor(3, 2),
            new DetSeg.Detection.YOLOv3(3, 2, new DetSeg.Detection.ModelScale(0.125, 0.25)),
            new DetSeg.Detection.SimpleDetector(3, 3, 2),
            new DetSeg.Detection.Localizer(1, 10),
            new DetSeg.Attention.VisionTransformer(new DetSeg.Attention.VisionTransformerConfig(EmbedDim: 8, HiddenDim: 8, NumHeads: 2, NumLayers: 1, NumClasses: 3)),
        ];
        var bad = models.SelectMany(m => m.named_modules().Where(n => unsafeTypes.Contains(n.module.GetType()))
            .Select(n => $"{m.GetType().Name}.{n.name}: {n.module.GetType().Name}")).ToList();
        Assert.True(bad.Count == 0, $"modules whose forward makes a temporary Scalar:\n{string.Join("\n", bad)}");
        // The scan itself would see them: TorchSharp's own BatchNorm2d is found.
        Assert.Contains(typeof(TorchSharp.Modules.BatchNorm2d), unsafeTypes);
    }
}

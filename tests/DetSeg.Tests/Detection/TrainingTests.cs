using DetSeg.Data;
using DetSeg.Detection;
using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Detection;

public class TrainingTests
{
    // The course's overfit check: on 128 MNIST-clutter images the loss must fall (smoke-sized model, 64 px to stay fast).
    [SkippableFact]
    public void OverfitCheck_128Images_LossFalls_AndTheTestPassIsTheDetectorsMap()
    {
        Skip.If(TestPaths.SharedData is null, "needs MNIST under ../shared/data (or DETSEG_DATA)");
        var dev = new torch.Device(DeviceType.CPU);
        var mnist = new MNIST(Path.Combine(TestPaths.SharedData!, "MNIST"), download: false);
        var data = new MCDetection(new MNISTClutter(instance: true, imageSize: 64, maxNumDigits: 3, mnist: mnist, device: dev));
        var subset = new Subset<Tensor[]>(data, Enumerable.Range(0, 128).ToArray());
        using var loader = new DataLoader(subset, 32, shuffle: true, seed: 0, device: dev, numWorkers: 0);
        var recipe = MnistClutterRecipe.For(new DetSeg.Runtime.Profile(DetSeg.Runtime.ProfileKind.Smoke));
        var (std, mean) = Anchors.CourseBoxStats();
        var model = new YOLOv3(3, 10, recipe.Scale, Anchors.ToPixels(Anchors.Lattice(std, mean), 64).to(float32));
        InitWeights(model, seed: 0);
        var trainer = DetectionTraining.CreateTrainer(model, optim.Adam(model.parameters(), 3e-3), new CustomYOLOv3Loss(64, model.anchors), dev);
        var first = trainer.OneEpoch(Phase.Training, loader, 0);
        trainer.OneEpoch(Phase.Training, loader, 1);
        var third = trainer.OneEpoch(Phase.Training, loader, 2);
        Assert.True(third.Loss < 0.9 * first.Loss, $"loss {first.Loss} -> {third.Loss}");
        Assert.True(double.IsNaN(third["map50"]), "training passes do not measure mAP");

        var test = trainer.OneEpoch(Phase.Testing, loader, 2);
        Assert.Equal(128, test.NumImages);
        Assert.Equal(128, trainer.Metrics.NumImages);
        // The test pass's mAP is the detector's: the same images through Detect with the same NMS settings, scored
        // by a separate evaluator, give the same figures.
        var eval = new DetectionTraining.EvalSettings();
        var byHand = new MeanAveragePrecision(10, eval.MaxDetections);
        foreach (var batch in loader)
            using (var det = model.Detect(batch[0], eval.NmsIou, eval.ScoreThreshold, eval.MaxDetections))
                byHand.Update(det, batch[1], batch[2]);
        Assert.Equal(byHand.Map50, test["map50"], 10);
        Assert.Equal(byHand.Map50To95, test["map50_95"], 10);
    }

    /// <summary>
    /// Fresh weights from a private generator, PyTorch's default convolution init (uniform ±1/√fan_in for weight
    /// and bias): construction drew from the global generator, which xUnit's other classes use in parallel.
    /// </summary>
    static void InitWeights(nn.Module model, int seed)
    {
        var g = new Generator((ulong)seed);
        using var _ = no_grad();
        foreach (var m in model.modules().OfType<TorchSharp.Modules.Conv2d>())
        {
            var w = m.weight!;
            double bound = 1 / Math.Sqrt(w.shape[1] * w.shape[2] * w.shape[3]);
            w.copy_(rand(w.shape, generator: g).mul_(2 * bound).sub_(bound));
            if (m.bias is { } bias) bias.copy_(rand(bias.shape, generator: g).mul_(2 * bound).sub_(bound));
        }
    }

    /// <summary>A recipe of 40 pool, 4 validation and 4 test images over <see cref="TwentyDigits"/>.</summary>
    static readonly MnistClutterRecipe SmallRecipe =
        new(new ModelScale(0.125, 0.25), TrainImages: 8, ValImages: 4, TestImages: 4, BatchSize: 4, Epochs: 1, TrainPool: 40);

    static MNIST TwentyDigits() => new(DetSeg.Tests.Data.Fixtures.MnistFolder(20), download: false);

    [Fact]
    public void RecipeData_SplitsPoolValTestDisjointly_AndDrawsTrainImagesPerEpoch()
    {
        var dev = new torch.Device(DeviceType.CPU);
        using var mnist = TwentyDigits();
        var recipe = SmallRecipe;
        using var data = recipe.CreateData(dev, mnist);
        Assert.Equal(48, data.Dataset.Count);                            // pool + val + test images, past MNIST's 20 digits
        Assert.Equal(40, data.TrainSet.Count);
        Assert.Equal(2, data.Train.Count);                               // 8 images per epoch in batches of 4
        Assert.True(data.Val.Count == 1, $"{data.Val.Count} validation batches, expected 1"); // a count, not the batches: enumerating would render them
        var all = data.TrainSet.Indices.Concat(data.ValSet.Indices).Concat(data.TestSet.Indices).ToList();
        Assert.Equal(48, all.Distinct().Count());
        Assert.Throws<ArgumentException>(() => (recipe with { TrainPool = 4 }).CreateData(dev, mnist));
        Assert.Equal(8, (recipe with { TrainPool = null }).Pool);
    }

    [Fact]
    public void RecipeData_TrainMaxDigits_MakesTrainingImagesDenser_AndLeavesValidationAndTestAsTheyWere()
    {
        var dev = new torch.Device(DeviceType.CPU);
        using var mnist = TwentyDigits();
        var plain = SmallRecipe;
        using var a = plain.CreateData(dev, mnist);
        using var b = (plain with { TrainMaxDigits = 6 }).CreateData(dev, mnist);
        Assert.Equal(a.TrainSet.Indices, b.TrainSet.Indices);   // the same split
        static int Digits(Tensor[] item) => (int)item[2].ge(0).sum().item<long>();
        static int[] Counts(Subset<Tensor[]> set) => Enumerable.Range(0, set.Count).Select(i => { var item = set[i]; int n = Digits(item); foreach (var t in item) t.Dispose(); return n; }).ToArray();
        var plainCounts = Counts(a.TrainSet);
        var denseCounts = Counts(b.TrainSet);
        Assert.All(plainCounts, n => Assert.InRange(n, 1, MnistClutterRecipe.MaxNumDigits));
        Assert.All(denseCounts, n => Assert.InRange(n, 1, 6));
        // the digit count is uniform on 1..k: over 40 images the denser pool holds clearly more (expected 3.5 vs 2 per image)
        Assert.True(denseCounts.Average() > plainCounts.Average() + 0.5, $"{denseCounts.Average():F2} vs {plainCounts.Average():F2} digits per image");
        Assert.Contains(denseCounts, n => n > MnistClutterRecipe.MaxNumDigits);
        foreach (var (x, y) in new[] { (a.ValSet, b.ValSet), (a.TestSet, b.TestSet) })
        {
            Assert.Equal(x.Indices, y.Indices);
            for (int i = 0; i < x.Count; i++)
                Assert.True(x[i][0].eq(y[i][0]).all().item<bool>(), $"image {i} of a held-out split changed");
        }
        Assert.Throws<ArgumentException>(() => (plain with { TrainMaxDigits = 0 }).CreateData(dev, mnist));
        Assert.True((plain with { MultiLabel = true }).Eval.MultiLabel);
        Assert.False(plain.Eval.MultiLabel);
    }
}

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
    public void OverfitCheck_128Images_LossFalls_AndValidationReportsMap()
    {
        Skip.If(TestPaths.SharedData is null, "needs MNIST under ../shared/data (or DETSEG_DATA)");
        var dev = new torch.Device(DeviceType.CPU);
        manual_seed(0);
        var mnist = new MNIST(Path.Combine(TestPaths.SharedData!, "MNIST"), download: false);
        var data = new MCDetection(new MNISTClutter(instance: true, imageSize: 64, maxNumDigits: 3, mnist: mnist, device: dev));
        var subset = new Subset<Tensor[]>(data, Enumerable.Range(0, 128).ToArray());
        using var loader = new DataLoader(subset, 32, shuffle: true, seed: 0, device: dev, numWorkers: 0);
        var recipe = MnistClutterRecipe.For(new DetSeg.Runtime.Profile(DetSeg.Runtime.ProfileKind.Smoke));
        var (std, mean) = Anchors.CourseBoxStats();
        var model = new YOLOv3(3, 10, recipe.Scale, Anchors.ToPixels(Anchors.Lattice(std, mean), 64).to(float32));
        var loss = new CustomYOLOv3Loss(64, model.anchors);
        var metrics = new MeanAveragePrecision(10);
        var trainer = new Trainer(model, optim.Adam(model.parameters(), 3e-3), DetectionTraining.Step(model, loss, metrics), metrics, dev);
        var first = trainer.OneEpoch(Phase.Training, loader, 0);
        trainer.OneEpoch(Phase.Training, loader, 1);
        var third = trainer.OneEpoch(Phase.Training, loader, 2);
        Assert.True(third.Loss < 0.9 * first.Loss, $"loss {first.Loss} -> {third.Loss}");
        var val = trainer.OneEpoch(Phase.Validation, loader, 2);
        Assert.Equal(128, val.NumImages);
        Assert.InRange(val["map50"], 0.0, 1.0);
    }

    [Fact]
    public void RecipeData_SplitsPoolValTestDisjointly_AndDrawsTrainImagesPerEpoch()
    {
        var dev = new torch.Device(DeviceType.CPU);
        using var mnist = new MNIST(DetSeg.Tests.Data.Fixtures.MnistFolder(20), download: false);
        var recipe = new MnistClutterRecipe(new ModelScale(0.125, 0.25), TrainImages: 8, ValImages: 4, TestImages: 4, BatchSize: 4, Epochs: 1, TrainPool: 40);
        using var data = recipe.CreateData(dev, mnist);
        Assert.Equal(48, data.Dataset.Count);                            // pool + val + test images, past MNIST's 20 digits
        Assert.Equal(40, data.TrainSet.Count);
        Assert.Equal(2, data.Train.Count);                               // 8 images per epoch in batches of 4
        Assert.Equal(1, data.Val.Count);
        var all = data.TrainSet.Indices.Concat(data.ValSet.Indices).Concat(data.TestSet.Indices).ToList();
        Assert.Equal(48, all.Distinct().Count());
        Assert.Throws<ArgumentException>(() => (recipe with { TrainPool = 4 }).CreateData(dev, mnist));
        Assert.Equal(8, (recipe with { TrainPool = null }).Pool);
    }
}

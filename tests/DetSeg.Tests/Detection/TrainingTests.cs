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
}

using System.Diagnostics;
using DetSeg.Data;
using DetSeg.Metrics;
using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Segmentation;

/// <summary>One training of <see cref="ClassWeightComparison.Run"/>: the loss's class weights and what the best checkpoint reached.</summary>
/// <param name="Weights">The loss's class weights [background, pedestrian].</param>
/// <param name="BestEpoch">Epoch of the best validation mean IoU.</param>
/// <param name="ValMeanIou">Best validation mean IoU.</param>
/// <param name="TestPedestrianIou">Test IoU of the pedestrian class with the best checkpoint.</param>
/// <param name="TestMeanIou">Test mean IoU over both classes.</param>
/// <param name="TestPedestrianRecall">Test recall of the pedestrian class.</param>
/// <param name="TestPedestrianPrecision">Test precision of the pedestrian class.</param>
/// <param name="Epochs">Epochs trained (early stopping may end a run before the limit).</param>
/// <param name="Elapsed">Wall-clock time of the training.</param>
/// <param name="StopMessage">Why the training ended (an invalid loss leaves no checkpoint and NaN figures).</param>
public sealed record ClassWeightRun(double[] Weights, int BestEpoch, double ValMeanIou, double TestPedestrianIou, double TestMeanIou,
                                    double TestPedestrianRecall, double TestPedestrianPrecision, int Epochs, TimeSpan Elapsed, string StopMessage)
{
    /// <inheritdoc/>
    public override string ToString() => BestEpoch < 0 ? $"weights [{string.Join(", ", Weights)}]: no checkpoint ({StopMessage})" :
        $"weights [{string.Join(", ", Weights)}]: test pedestrian IoU {TestPedestrianIou:P1} (recall {TestPedestrianRecall:P1}, precision {TestPedestrianPrecision:P1}), " +
        $"mean IoU {TestMeanIou:P1}; best epoch {BestEpoch} of {Epochs}, validation mean IoU {ValMeanIou:P1}, {Elapsed.TotalMinutes:F1} min";
}

/// <summary>
/// The course's question "what do the loss weights [1, 1] and [1, 2] change?", answered by training: one U-Net per
/// weight vector from the same seed, the same augmentations and the same batches, so the weights are the only difference.
/// </summary>
public static class ClassWeightComparison
{
    /// <summary>
    /// Trains <c>SemanticSegmentor(3, 2, width)</c> once per entry of <paramref name="weights"/> with the notebook's recipe
    /// (Adam 1e-3, batch <paramref name="batchSize"/>, best by validation mean IoU, patience 5) and evaluates each best
    /// checkpoint on <paramref name="test"/>. With the notebook's splits, seed and settings the [1, 2] run repeats the
    /// notebook's main training.
    /// </summary>
    /// <param name="weights">Class-weight vectors, e.g. <c>[[1, 1], [1, 2]]</c>.</param>
    /// <param name="train">Training images (augmented with a generator seeded by <paramref name="seed"/>, fresh per run).</param>
    /// <param name="val">Validation images.</param>
    /// <param name="test">Test images.</param>
    /// <param name="imageSize">Side of the square inputs.</param>
    /// <param name="width">U-Net width (64 is the course's).</param>
    /// <param name="epochs">Epoch limit.</param>
    /// <param name="batchSize">Training batch size.</param>
    /// <param name="seed">Seed of the weights, the augmentation and the shuffling.</param>
    /// <param name="device">Where to train (default: <see cref="Runtime.Device.Default"/>).</param>
    /// <param name="log">Where the per-epoch lines go (default: none).</param>
    /// <exception cref="ArgumentException">No weight vector, or one without two entries.</exception>
    public static IReadOnlyList<ClassWeightRun> Run(IReadOnlyList<double[]> weights, IDataset<PennFudanItem> train, IDataset<PennFudanItem> val,
        IDataset<PennFudanItem> test, int imageSize, long width, int epochs, int batchSize = 4, long seed = 0, Device? device = null, TextWriter? log = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (weights.Count == 0 || weights.Any(w => w is null || w.Length != 2))
            throw new ArgumentException("ClassWeightComparison: give one or more weight vectors of two entries [background, pedestrian].", nameof(weights));
        device ??= Runtime.Device.Default;
        var valSet = new PFSegmentation(val, imageSize, device: device);
        var testSet = new PFSegmentation(test, imageSize, device: device);
        using var valLoader = new DataLoader(valSet, batchSize: 17, device: device);
        using var testLoader = new DataLoader(testSet, batchSize: 17, device: device);
        var runs = new List<ClassWeightRun>();
        foreach (var w in weights)
        {
            var clock = Stopwatch.StartNew();
            var trainSet = new PFSegmentation(train, imageSize, seed: seed, device: device) { Training = true };
            // Built on this thread (numWorkers 0): the same batches as the notebook's loader, and the augmentation's
            // implicit number-to-Scalar conversions stay off worker threads (TorchSharp 0.107's finalizer race).
            using var trainLoader = new DataLoader(trainSet, batchSize: batchSize, shuffle: true, dropLast: true, seed: seed, device: device, numWorkers: 0);
            torch.manual_seed(seed);
            var model = new SemanticSegmentor(3, 2, width).to(device);
            using var optimizer = Optim.Adam(model.parameters(), lr: 1e-3);
            var trainer = SegmentationTraining.CreateTrainer(model, optimizer, device: device, classWeights: w);
            var options = SegmentationTraining.DefaultOptions(epochs: epochs) with
            {
                Generators = [trainSet.AugmentationGenerator],
                Progress = Progress.None,
                Log = log ?? TextWriter.Null,
            };
            var result = trainer.Train(trainLoader, valLoader, options);
            if (result.Best is null)
                runs.Add(new ClassWeightRun(w, -1, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, result.History.Count, clock.Elapsed, result.StopMessage));
            else
            {
                result.Best.Restore(model);
                var t = trainer.OneEpoch(Phase.Testing, testLoader);
                var m = trainer.Metrics;                                     // the test pass's confusion matrix
                using var recall = m.Recall;
                using var precision = m.Precision;
                runs.Add(new ClassWeightRun(w, result.BestEpoch, result.BestValue, t["iou_1"], t["mean_iou"],
                    recall[1].item<double>(), precision[1].item<double>(), result.History.Count, clock.Elapsed, result.StopMessage));
            }
            model.Dispose();
        }
        return runs;
    }
}

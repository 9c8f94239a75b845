using DetSeg.Data;
using DetSeg.Runtime;

namespace DetSeg.Detection;

/// <summary>
/// Settings for training YOLOv3 from scratch on MNIST clutter (128x128; validation and test images hold ≤ 3 digits), per profile.
/// Each epoch draws <see cref="TrainImages"/> images from a pool of <see cref="TrainPool"/> distinct ones, so later
/// epochs mostly see new compositions of the digits: with a fixed 8,000-image set the model overfitted from epoch 7
/// on (per-image validation loss 3.8x the training loss by epoch 13) and stopped at test mAP@0.5 0.793.
/// </summary>
/// <remarks>
/// The cpu recipe, measured on 2 cores (<c>DETSEG_PROFILE=cpu dotnet run -c Release --project bench/DetSeg.Bench --
/// detection-train</c>, 2026-12-06, <c>bench/results/clutter-recipe-2026-12-06.json</c>; validation picks, the test
/// split is each run's single pass): with the course's loss, 13 epochs in 847 s, test mAP@0.5 0.848, mAP@0.75 0.472,
/// mAP@0.5:0.95 0.475; with the CIoU box term and IoU objectness target 0.835 / 0.707 / 0.593 (boxes much tighter);
/// evaluated multi-label 0.856 / 0.727 / 0.609; training images with up to 6 digits (<see cref="TrainMaxDigits"/>)
/// 0.910 / 0.795 / 0.663 in 13 epochs (12: 0.897, 11: 0.882). To fit the ~15-minute budget: 11 epochs at lr 2e-3
/// 0.900 / 0.760 / 0.641 (up to 6 digits), at lr 1e-3 with up to 9 digits 0.886 / 0.729 / 0.610, and both — the cpu
/// recipe — 0.931 / 0.787 / 0.663 (validation 0.918; epochs ~65-75 s alone). An average of the weights (EMA 0.999)
/// validated 0.006 lower at the end and is not used. A side-by-side search on a GPU (course's
/// loss, validation mAP@0.5): fixed 8,000 images 0.766; pool, 10 epochs 0.754, at lr 2e-3 0.765; pool, 13 epochs 0.835.
/// </remarks>
/// <param name="Scale">Width/depth multipliers.</param>
/// <param name="TrainImages">Training images per epoch.</param>
/// <param name="ValImages">Validation images (model selection by mAP@0.5).</param>
/// <param name="TestImages">Held-out test images (reported once at the end).</param>
/// <param name="BatchSize">Batch size.</param>
/// <param name="Epochs">Epochs.</param>
/// <param name="LearningRate">Adam learning rate (cosine-decayed per epoch to 5 % of it).</param>
/// <param name="TrainPool">Distinct training images the epochs draw from (≥ <paramref name="TrainImages"/>; null: just those).</param>
/// <param name="Box">The loss's box term (<see cref="CreateLoss"/>): the course's squared errors, or CIoU.</param>
/// <param name="Objectness">The loss's objectness target for responsible predictions: 1 (the course's) or their IoU.</param>
/// <param name="TrainMaxDigits">At most this many digits per training image (null: <see cref="MaxNumDigits"/>, as validation and test).
/// More digits per image give more labelled digits per step for the same compute (as mosaic does).</param>
/// <param name="MultiLabel">Evaluate with one candidate per box and class above the score threshold (YOLOv5/v8's mAP), not only
/// each box's most likely class (the course's): see <see cref="YOLOv3.Postprocess"/> and <see cref="Eval"/>.</param>
public sealed record MnistClutterRecipe(ModelScale Scale, int TrainImages, int ValImages, int TestImages, int BatchSize, int Epochs,
                                        double LearningRate = 1e-3, int? TrainPool = null,
                                        BoxLoss Box = BoxLoss.Course, ObjectnessTarget Objectness = ObjectnessTarget.One,
                                        int? TrainMaxDigits = null, bool MultiLabel = false)
{
    /// <summary>The NMS settings of this recipe's validation and test passes (<see cref="DetectionTraining.CreateTrainer"/>'s <c>eval</c>).</summary>
    public DetectionTraining.EvalSettings Eval => new(MultiLabel: MultiLabel);

    /// <summary>This recipe's loss for a model with <paramref name="anchors"/> ([3 x K x 2] pixels), on the anchors' device.</summary>
    public CustomYOLOv3Loss CreateLoss(TorchSharp.torch.Tensor anchors) =>
        new(ImageSize, anchors, box: Box, objectness: Objectness);

    /// <summary>Image size.</summary>
    public const int ImageSize = 128;
    /// <summary>Digits per image at most.</summary>
    public const int MaxNumDigits = 3;

    /// <summary>The recipe of a profile.</summary>
    public static MnistClutterRecipe For(Profile profile) => profile.Pick(
        smoke: new MnistClutterRecipe(new ModelScale(0.125, 0.25), 128, 32, 32, 16, 1, Box: BoxLoss.CompleteIou, Objectness: ObjectnessTarget.Iou,
                                      TrainMaxDigits: 6, MultiLabel: true),
        cpu: new MnistClutterRecipe(new ModelScale(0.25, 0.25), 8000, 500, 1000, 16, 11, LearningRate: 2e-3, TrainPool: 100_000, Box: BoxLoss.CompleteIou,
                                    Objectness: ObjectnessTarget.Iou, TrainMaxDigits: 9, MultiLabel: true),
        gpu: new MnistClutterRecipe(ModelScale.Full, 8000, 1000, 1000, 32, 30, TrainPool: 240_000, Box: BoxLoss.CompleteIou, Objectness: ObjectnessTarget.Iou,
                                    TrainMaxDigits: 6, MultiLabel: true));

    /// <summary>The recipe of the current profile.</summary>
    public static MnistClutterRecipe Current => For(Profile.Current);

    /// <summary>The training pool size: <see cref="TrainPool"/>, or <see cref="TrainImages"/> when it is null.</summary>
    public int Pool => TrainPool ?? TrainImages;

    /// <summary>
    /// The dataset and loaders of this recipe: MNIST clutter with Pool + ValImages + TestImages images, split at
    /// random (seed 0) into a training pool, validation and test; the training loader shuffles (seed 0) and draws
    /// <see cref="TrainImages"/> per epoch; validation and test go in batches of 100. With <see cref="TrainMaxDigits"/>
    /// the training pool's images (same indices) are drawn with up to that many digits; validation and test are unchanged.
    /// </summary>
    /// <param name="device">Where images are rendered and batches go.</param>
    /// <param name="mnist">The digits (default: the MNIST test split under $DETSEG_DATA, downloaded if missing).</param>
    public MnistClutterData CreateData(TorchSharp.torch.Device device, MNIST? mnist = null)
    {
        if (TrainImages < 1 || ValImages < 1 || TestImages < 1 || BatchSize < 1 || Epochs < 1)
            throw new ArgumentException($"Image counts, batch size and epochs must be ≥ 1: {this}.");
        if (Pool < TrainImages) throw new ArgumentException($"TrainPool ({Pool}) must be ≥ TrainImages ({TrainImages}).");
        if (TrainMaxDigits is < 1) throw new ArgumentException($"TrainMaxDigits must be ≥ 1, got {TrainMaxDigits}.");
        var clutter = new MNISTClutter(instance: true, imageSize: ImageSize, maxNumDigits: MaxNumDigits, mnist: mnist, device: device,
                                       numImages: Pool + ValImages + TestImages);
        var data = new MCDetection(clutter);
        var splits = RandomSplit.Split(data, new[] { Pool, ValImages, TestImages }, seed: 0);
        var train = TrainMaxDigits is int k && k != MaxNumDigits
            ? new Subset<TorchSharp.torch.Tensor[]>(new MCDetection(new MNISTClutter(instance: true, imageSize: ImageSize, maxNumDigits: k,
                mnist: clutter.Mnist, device: device, numImages: clutter.Count)), splits[0].Indices)
            : splits[0];
        return new MnistClutterData(data, train, splits[1], splits[2],
            new DataLoader(train, BatchSize, shuffle: true, dropLast: true, seed: 0, device: device, numSamples: TrainImages),
            new DataLoader(splits[1], 100, device: device),
            new DataLoader(splits[2], 100, device: device));
    }
}

/// <summary>The dataset and the three loaders of a <see cref="MnistClutterRecipe"/>.</summary>
/// <param name="Dataset">All images (training pool, validation and test).</param>
/// <param name="TrainSet">The training pool.</param>
/// <param name="ValSet">The validation images.</param>
/// <param name="TestSet">The held-out test images.</param>
/// <param name="Train">Training batches (shuffled, a fresh draw from the pool each epoch).</param>
/// <param name="Val">Validation batches.</param>
/// <param name="Test">Test batches.</param>
public sealed record MnistClutterData(MCDetection Dataset, Subset<TorchSharp.torch.Tensor[]> TrainSet, Subset<TorchSharp.torch.Tensor[]> ValSet,
                                      Subset<TorchSharp.torch.Tensor[]> TestSet, DataLoader Train, DataLoader Val, DataLoader Test) : IDisposable
{
    /// <summary>Disposes the loaders.</summary>
    public void Dispose()
    {
        Train.Dispose(); Val.Dispose(); Test.Dispose();
    }
}

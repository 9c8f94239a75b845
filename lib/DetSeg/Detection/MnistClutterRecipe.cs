using DetSeg.Runtime;

namespace DetSeg.Detection;

/// <summary>
/// Settings for training YOLOv3 from scratch on MNIST clutter (≤ 3 digits, 128x128), per profile.
/// The cpu profile runs 13 epochs (~6,500 steps, what the reference needed for mAP@0.5 0.80): 30 minutes on a
/// partly busy 2-core machine, test mAP@0.5 0.793; gpu uses the full model.
/// </summary>
/// <param name="Scale">Width/depth multipliers.</param>
/// <param name="TrainImages">Training images.</param>
/// <param name="ValImages">Validation images (model selection by mAP@0.5).</param>
/// <param name="TestImages">Held-out test images (reported once at the end).</param>
/// <param name="BatchSize">Batch size.</param>
/// <param name="Epochs">Epochs.</param>
/// <param name="LearningRate">Adam learning rate (cosine-decayed per epoch to 5 % of it).</param>
public sealed record MnistClutterRecipe(ModelScale Scale, int TrainImages, int ValImages, int TestImages, int BatchSize, int Epochs, double LearningRate = 1e-3)
{
    /// <summary>Image size.</summary>
    public const int ImageSize = 128;
    /// <summary>Digits per image at most.</summary>
    public const int MaxNumDigits = 3;

    /// <summary>The recipe of a profile.</summary>
    public static MnistClutterRecipe For(Profile profile) => profile.Pick(
        smoke: new MnistClutterRecipe(new ModelScale(0.125, 0.25), 128, 32, 32, 16, 1),
        cpu: new MnistClutterRecipe(new ModelScale(0.25, 0.25), 8000, 500, 1000, 16, 13),
        gpu: new MnistClutterRecipe(ModelScale.Full, 8000, 1000, 1000, 32, 30));

    /// <summary>The recipe of the current profile.</summary>
    public static MnistClutterRecipe Current => For(Profile.Current);
}

using DetSeg.Data;
using DetSeg.Metrics;
using DetSeg.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Attention;

/// <summary>
/// How a <see cref="VisionTransformer"/> is trained: AdamW with an optional linear warm-up, then cosine decay to 0;
/// optionally a random affine augmentation of the training batches and label smoothing. The defaults are the
/// plain recipe (no warm-up, no augmentation, no smoothing); notebook 04 states and measures what it adds.
/// </summary>
/// <param name="Epochs">Passes over the training set; warm-up and cosine decay span them.</param>
/// <param name="BatchSize">Images per step.</param>
/// <param name="LearningRate">Peak learning rate (the first one when <paramref name="WarmupEpochs"/> is 0).</param>
/// <param name="WeightDecay">AdamW's decoupled weight decay, applied to weights of 2 or more dimensions only.</param>
/// <param name="Seed">Seeds the initial weights (<see cref="ViTTraining.CreateModel"/>) and the loader's shuffling, so Pre-LN and Post-LN runs start alike and see the same batches.</param>
/// <param name="WarmupEpochs">Epochs over which the learning rate rises linearly to its peak (epoch e of w runs at (e + 1)/(w + 1) of it).</param>
/// <param name="Degrees">Training batches: largest random rotation, in degrees (0 with <paramref name="Translate"/> and <paramref name="Zoom"/> 0: no augmentation).</param>
/// <param name="Translate">Training batches: largest random shift, as a fraction of the side (0.1 = 2.8 pixels of 28).</param>
/// <param name="Zoom">Training batches: largest random relative zoom in or out.</param>
/// <param name="LabelSmoothing">Cross-entropy's label smoothing in training (0: none; validation and test losses never smooth).</param>
public sealed record ViTRecipe(int Epochs = 20, int BatchSize = 64, double LearningRate = 2e-3, double WeightDecay = 0.01, long Seed = 0,
                               int WarmupEpochs = 0, double Degrees = 0, double Translate = 0, double Zoom = 0, double LabelSmoothing = 0)
{
    /// <summary>The training-batch augmentation of this recipe, drawing from torch's default generator; null when it has none.</summary>
    public RandomAffine? CreateAugmentation() =>
        Degrees == 0 && Translate == 0 && Zoom == 0 ? null : new RandomAffine(Degrees, Translate, Zoom);

    /// <summary>The learning-rate factor of epoch <paramref name="epoch"/> (0-based): linear warm-up, then a cosine from 1 to 0 over the remaining epochs.</summary>
    public double LearningRateFactor(int epoch)
    {
        if (epoch < WarmupEpochs) return (epoch + 1.0) / (WarmupEpochs + 1.0);
        int decay = Math.Max(1, Epochs - WarmupEpochs);
        return 0.5 * (1 + Math.Cos(Math.PI * Math.Min(epoch - WarmupEpochs, decay) / decay));
    }
}

/// <summary>
/// Training a <see cref="VisionTransformer"/> classifier on the shared <see cref="Trainer"/>. Like every task:
/// <see cref="Step"/>, <see cref="DefaultOptions"/> and <see cref="CreateTrainer"/>; a test pass is
/// <c>trainer.OneEpoch(Phase.Testing, testLoader)</c>, its table <c>trainer.Metrics.ToString()</c>.
/// </summary>
public static class ViTTraining
{
    /// <summary>A new model on <paramref name="device"/> whose initial weights depend only on <paramref name="seed"/>.</summary>
    public static VisionTransformer CreateModel(VisionTransformerConfig config, long seed, torch.Device? device = null)
    {
        manual_seed(seed);
        var model = new VisionTransformer(config);
        model.to(device ?? Runtime.Device.Default);
        return model;
    }

    /// <summary>
    /// AdamW at <see cref="ViTRecipe.LearningRate"/> in two parameter groups: weights of 2 or more dimensions (linear
    /// layers, patch projection) decay by <see cref="ViTRecipe.WeightDecay"/>; biases, LayerNorm weights and the CLS and
    /// position embeddings (1-D, or learned offsets rather than weights) do not — nanoGPT's <c>configure_optimizers</c>
    /// rule. Pulling a LayerNorm gain or a position embedding towards 0 only fights the model.
    /// </summary>
    public static optim.Optimizer CreateOptimizer(VisionTransformer model, ViTRecipe recipe)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(recipe);
        var (decay, noDecay) = DecayGroups(model);
        return Optim.AdamW(new[]
        {
            new AdamW.ParamGroup(decay, new AdamW.Options { weight_decay = recipe.WeightDecay }),
            new AdamW.ParamGroup(noDecay, new AdamW.Options { weight_decay = 0.0 }),
        }, lr: recipe.LearningRate, weight_decay: recipe.WeightDecay);
    }

    /// <summary>The trainable parameters that decay (matrices: 2 or more dimensions, except the CLS and position embeddings) and those that do not.</summary>
    public static (IReadOnlyList<Parameter> Decay, IReadOnlyList<Parameter> NoDecay) DecayGroups(VisionTransformer model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var decay = new List<Parameter>();
        var noDecay = new List<Parameter>();
        foreach (var (name, p) in model.named_parameters())
        {
            if (!p.requires_grad) continue;
            bool embedding = name is "cls_token" or "pos_embedding";
            (p.dim() >= 2 && !embedding ? decay : noDecay).Add(p);
        }
        return (decay, noDecay);
    }

    /// <summary>
    /// The per-batch step: <c>batch = [images [B x C x H x W], labels [B]]</c> → cross-entropy loss, and a
    /// <paramref name="metrics"/> update with the arg-max class. In training, <paramref name="augmentation"/> (if any)
    /// transforms the images first and the loss smooths labels by <paramref name="labelSmoothing"/>; validation and
    /// test see the images as they are, with the plain loss. No host sync (the trainer reads the loss once, and
    /// keeps every training batch's loss in <see cref="EpochResult.BatchLosses"/>).
    /// </summary>
    public static TrainingStep Step(VisionTransformer model, ClassificationMetrics metrics, RandomAffine? augmentation = null, double labelSmoothing = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(metrics);
        if (!(labelSmoothing >= 0 && labelSmoothing < 1))
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing, "labelSmoothing must lie in [0, 1).");
        return (batch, phase) =>
        {
            if (batch.Length < 2)
                throw new ArgumentException($"A classification batch is [images, labels]; got {batch.Length} field(s).", nameof(batch));
            bool training = phase == Phase.Training;
            var images = training && augmentation is not null ? augmentation.Apply(batch[0]) : batch[0];
            var logits = model.call(images);                          // [B x NumClasses]
            if (logits.dim() != 2 || batch[1].dim() != 1 || batch[1].shape[0] != logits.shape[0])
                throw new ArgumentException($"A classification step needs logits [B x C] and labels [B], got [{string.Join(" x ", logits.shape)}] and [{string.Join(" x ", batch[1].shape)}].", nameof(batch));
            using (no_grad())
                metrics.Update(logits.argmax(1), batch[1]);
            return nn.functional.cross_entropy(logits, batch[1], label_smoothing: training ? labelSmoothing : 0.0);
        };
    }

    /// <summary>
    /// A trainer for <paramref name="model"/> with <see cref="Step"/> and one <see cref="ClassificationMetrics"/> over the
    /// model's classes, shared by step and trainer: its <c>accuracy</c> is top-1 accuracy, and after a test pass
    /// <c>trainer.Metrics</c> holds the test confusion matrix. With a <paramref name="recipe"/>, training batches get
    /// its augmentation and label smoothing (<see cref="ViTRecipe.CreateAugmentation"/>, <see cref="ViTRecipe.LabelSmoothing"/>).
    /// </summary>
    public static Trainer<ClassificationMetrics> CreateTrainer(VisionTransformer model, optim.Optimizer? optimizer, torch.Device? device = null, ViTRecipe? recipe = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var metrics = new ClassificationMetrics((int)model.Config.NumClasses) { PerClassIoU = false };
        return new(model, optimizer, Step(model, metrics, recipe?.CreateAugmentation(), recipe?.LabelSmoothing ?? 0), metrics, device);
    }

    /// <summary>
    /// The recipe's run: <see cref="ViTRecipe.Epochs"/> epochs, best checkpoint by validation top-1 <c>accuracy</c>, no
    /// early stopping (the cosine schedule needs its whole length; the best epoch is kept anyway), and the learning rate
    /// of <paramref name="optimizer"/> set once per epoch by <see cref="ViTRecipe.LearningRateFactor"/>: the warm-up,
    /// then a cosine decay to 0 (with no warm-up, PyTorch's <c>CosineAnnealingLR(T_max = Epochs)</c>).
    /// </summary>
    public static TrainOptions DefaultOptions(ViTRecipe recipe, optim.Optimizer optimizer, string? runName = null)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        ArgumentNullException.ThrowIfNull(optimizer);
        return new TrainOptions
        {
            Epochs = recipe.Epochs,
            Monitor = "accuracy",
            MonitorPhase = Phase.Validation,
            HigherIsBetter = true,
            Patience = null,
            Scheduler = recipe.WarmupEpochs == 0
                ? optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max: Math.Max(1, recipe.Epochs))
                : optim.lr_scheduler.LambdaLR(optimizer, recipe.LearningRateFactor),
            RunName = runName,
        };
    }
}

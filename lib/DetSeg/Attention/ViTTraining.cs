using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Attention;

/// <summary>How a <see cref="VisionTransformer"/> is trained: AdamW with cosine decay and no warm-up.</summary>
/// <param name="Epochs">Passes over the training set; the cosine schedule decays to 0 over them.</param>
/// <param name="BatchSize">Images per step.</param>
/// <param name="LearningRate">Peak (and first) learning rate: there is deliberately no warm-up.</param>
/// <param name="WeightDecay">AdamW's decoupled weight decay.</param>
/// <param name="Seed">Seeds the initial weights (<see cref="ViTTraining.CreateModel"/>) and the loader's shuffling, so Pre-LN and Post-LN runs start alike and see the same batches.</param>
public sealed record ViTRecipe(int Epochs = 20, int BatchSize = 64, double LearningRate = 2e-3, double WeightDecay = 0.01, long Seed = 0);

/// <summary>Training a <see cref="VisionTransformer"/> classifier with the shared <see cref="Trainer"/>.</summary>
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
    /// The per-batch step: <c>batch = [images [B x C x H x W], labels [B]]</c> → cross-entropy loss; updates
    /// <paramref name="metrics"/> and, in training, appends every batch's loss to <paramref name="batchLosses"/>
    /// (for curves finer than one point per epoch; the trainer reads the loss anyway, so this adds no sync).
    /// </summary>
    public static TrainingStep Step(VisionTransformer model, ClassifierMetrics metrics, List<double>? batchLosses = null) =>
        (batch, phase) =>
        {
            if (batch.Length < 2)
                throw new ArgumentException($"A classification batch is [images, labels]; got {batch.Length} field(s).", nameof(batch));
            var logits = model.call(batch[0]);                        // [B x NumClasses]
            metrics.Update(logits, batch[1]);
            var loss = nn.functional.cross_entropy(logits, batch[1]);
            if (phase == Phase.Training) batchLosses?.Add(loss.item<float>());
            return loss;
        };

    /// <summary>
    /// Trains <paramref name="model"/> (already on <paramref name="device"/>) with <paramref name="recipe"/>,
    /// keeping the checkpoint with the best validation accuracy (restored into the model at the end).
    /// Returns the trainer's result, the per-batch training losses and the trainer itself (for testing).
    /// </summary>
    /// <param name="model">The model to train.</param>
    /// <param name="train">Training batches (shuffled by the loader).</param>
    /// <param name="validation">Validation batches (model selection).</param>
    /// <param name="recipe">Optimizer and schedule (its seed is for the model and the loader, used by their creators).</param>
    /// <param name="runName">Checkpoint folder name under <paramref name="checkpointRoot"/> (null: in memory only).</param>
    /// <param name="checkpointRoot">Where run folders go.</param>
    /// <param name="log">Per-epoch log (null: the console).</param>
    /// <param name="progress">Per-batch progress (null: automatic).</param>
    /// <param name="device">Where batches go (null: <see cref="Runtime.Device.Default"/>).</param>
    public static ViTRun Train(VisionTransformer model, IEnumerable<Tensor[]> train, IEnumerable<Tensor[]> validation,
        ViTRecipe recipe, string? runName = null, string checkpointRoot = "checkpoints", TextWriter? log = null,
        IProgressSink? progress = null, torch.Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(recipe);
        var metrics = new ClassifierMetrics((int)model.Config.NumClasses);
        var losses = new List<double>();
        var optimizer = optim.AdamW(model.parameters(), lr: recipe.LearningRate, weight_decay: recipe.WeightDecay);
        // The trainer steps the schedule once per epoch; T_max = Epochs decays to 0 by the last one.
        var scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max: Math.Max(1, recipe.Epochs));
        var trainer = new Trainer(model, optimizer, Step(model, metrics, losses), metrics, device);
        var result = trainer.Train(train, validation, new TrainOptions
        {
            Epochs = recipe.Epochs,
            Monitor = "accuracy",
            HigherIsBetter = true,
            Patience = null,          // the cosine schedule needs its whole length; the best epoch is kept anyway
            Scheduler = scheduler,
            RunName = runName,
            CheckpointRoot = checkpointRoot,
            Log = log,
            Progress = progress,
        });
        result.Best?.Restore(model);
        return new ViTRun(result, losses, trainer, metrics);
    }
}

/// <summary>The outcome of <see cref="ViTTraining.Train"/>.</summary>
/// <param name="Result">The trainer's history, best checkpoint and stop reason.</param>
/// <param name="BatchLosses">Training loss of every batch, in order.</param>
/// <param name="Trainer">The trainer (e.g. <c>Trainer.OneEpoch(Phase.Testing, testLoader)</c>).</param>
/// <param name="Metrics">The metrics object the trainer filled last (after a test pass: the test confusion table).</param>
public sealed record ViTRun(TrainResult Result, IReadOnlyList<double> BatchLosses, Trainer Trainer, ClassifierMetrics Metrics);

using DetSeg.Metrics;
using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Segmentation;

/// <summary>
/// Part 1's training recipe on the shared <see cref="Trainer"/>: the course's weighted, -1-ignoring loss,
/// <see cref="ClassificationMetrics"/> over pixels, and selection by validation mean IoU.
/// </summary>
public static class SegmentationTraining
{
    /// <summary>
    /// The per-batch step for batches <c>[images [B x 3 x H x W], masks [B x H x W] int64]</c>: forward,
    /// <see cref="SegmentationLoss"/>, and a metrics update with the arg-max prediction (-1 pixels ignored).
    /// </summary>
    public static TrainingStep Step(nn.Module<Tensor, Tensor> model, ClassificationMetrics metrics, IReadOnlyList<double>? classWeights = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(metrics);
        return (batch, phase) =>
        {
            if (batch.Length < 2)
                throw new ArgumentException($"A segmentation batch is [images, masks]; got {batch.Length} tensor(s).");
            var logits = model.call(batch[0]); // [B x C x H x W]
            var loss = SegmentationLoss.Compute(logits, batch[1], classWeights);
            using (torch.no_grad())
            {
                var pred = logits.argmax(1); // [B x H x W]
                metrics.Update(pred, batch[1]); // the running counts live outside the trainer's per-batch scope
            }
            return loss;
        };
    }

    /// <summary>A trainer for <paramref name="model"/> with <see cref="Step"/>; <paramref name="metrics"/> holds the last pass's confusion matrix.</summary>
    public static Trainer CreateTrainer(nn.Module<Tensor, Tensor> model, optim.Optimizer? optimizer, ClassificationMetrics metrics,
        torch.Device? device = null, IReadOnlyList<double>? classWeights = null) =>
        new(model, optimizer, Step(model, metrics, classWeights), metrics, device);

    /// <summary>
    /// The defaults for Penn-Fudan: best checkpoint by validation <c>mean_iou</c> (higher is better), patience 5,
    /// at most 30 epochs — the course's settings. Mean IoU, not accuracy: with ~80 % background pixels a model
    /// that predicts "background" everywhere has high accuracy and zero pedestrian IoU; the mean over classes
    /// gives the rare class the same say.
    /// </summary>
    public static TrainOptions DefaultOptions(string? runName = null, int epochs = 30, int? patience = 5) => new()
    {
        Monitor = "mean_iou",
        MonitorPhase = Phase.Validation,
        HigherIsBetter = true,
        Patience = patience,
        Epochs = epochs,
        RunName = runName,
    };

    /// <summary>
    /// The course's <c>one_epoch(phase, model, loader, device, optimizer)</c>: one pass, returning the epoch's
    /// figures (loss, num_images, mean_/weighted_ metrics, iou_&lt;class&gt;) and the filled metrics object
    /// (for its table: <c>metrics.ToString()</c>).
    /// </summary>
    public static (EpochResult Result, ClassificationMetrics Metrics) OneEpoch(Phase phase, nn.Module<Tensor, Tensor> model,
        IEnumerable<Tensor[]> loader, torch.Device device, optim.Optimizer? optimizer = null, int numClasses = 2, IReadOnlyList<double>? classWeights = null)
    {
        var metrics = new ClassificationMetrics(numClasses);
        var result = CreateTrainer(model, optimizer, metrics, device, classWeights).OneEpoch(phase, loader);
        return (result, metrics);
    }

    /// <summary>Arg-max masks for a batch of images, in eval mode without gradients: [B x 3 x H x W] to [B x H x W] int64.</summary>
    public static Tensor Predict(nn.Module<Tensor, Tensor> model, Tensor images)
    {
        ArgumentNullException.ThrowIfNull(model);
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var _ = torch.no_grad();
            using var scope = NewDisposeScope();
            var x = images.dim() == 3 ? images.unsqueeze(0) : images; // [B x 3 x H x W]
            return model.call(x).argmax(1).MoveToOuterDisposeScope();
        }
        finally
        {
            model.train(wasTraining);
        }
    }
}

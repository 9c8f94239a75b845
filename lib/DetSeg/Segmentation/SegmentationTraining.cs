using DetSeg.Metrics;
using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Segmentation;

/// <summary>
/// Part 1's training recipe on the shared <see cref="Trainer"/>: the course's weighted, -1-ignoring loss,
/// <see cref="ClassificationMetrics"/> over pixels, and selection by validation mean IoU. Like every task:
/// <see cref="Step"/>, <see cref="DefaultOptions"/> and <see cref="CreateTrainer"/>; a test pass is
/// <c>trainer.OneEpoch(Phase.Testing, testLoader)</c>, its table <c>trainer.Metrics.ToString()</c>.
/// </summary>
public static class SegmentationTraining
{
    /// <summary>
    /// The per-batch step for batches <c>[images [B x 3 x H x W], masks [B x H x W] int64]</c>: forward,
    /// <see cref="SegmentationLoss"/>, and a metrics update with the arg-max prediction (-1 pixels ignored).
    /// No host sync: the class weights go to the device once, on the first batch.
    /// </summary>
    public static TrainingStep Step(nn.Module<Tensor, Tensor> model, ClassificationMetrics metrics, IReadOnlyList<double>? classWeights = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(metrics);
        Tensor? weight = null;
        return (batch, phase) =>
        {
            if (batch.Length < 2)
                throw new ArgumentException($"A segmentation batch is [images, masks]; got {batch.Length} tensor(s).");
            var logits = model.call(batch[0]); // [B x C x H x W]
            if (weight is null || weight.device_type != logits.device_type || weight.device_index != logits.device_index || weight.dtype != logits.dtype)
            {
                // Kept for the run: it must outlive the trainer's per-batch dispose scope.
                weight?.Dispose();
                weight = SegmentationLoss.Weights(logits.shape[1], classWeights, logits.device, logits.dtype).DetachFromDisposeScope();
            }
            var loss = SegmentationLoss.ComputeWithWeight(logits, batch[1], weight);
            using (torch.no_grad())
            {
                var pred = logits.argmax(1); // [B x H x W]
                metrics.Update(pred, batch[1]); // the running counts live outside the trainer's per-batch scope
            }
            return loss;
        };
    }

    /// <summary>
    /// A trainer for <paramref name="model"/> with <see cref="Step"/> and one <see cref="ClassificationMetrics"/> over
    /// <paramref name="numClasses"/> classes, shared by step and trainer: after a pass, <c>trainer.Metrics</c> holds
    /// its confusion matrix.
    /// </summary>
    public static Trainer<ClassificationMetrics> CreateTrainer(nn.Module<Tensor, Tensor> model, optim.Optimizer? optimizer,
        int numClasses = 2, torch.Device? device = null, IReadOnlyList<double>? classWeights = null)
    {
        var metrics = new ClassificationMetrics(numClasses);
        return new(model, optimizer, Step(model, metrics, classWeights), metrics, device);
    }

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

using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Detection;

/// <summary>
/// Part 2's training recipe on the shared <see cref="Trainer"/>: <see cref="YOLOv3"/>, <see cref="CustomYOLOv3Loss"/>
/// and <see cref="MeanAveragePrecision"/>, selection by validation <c>map50</c>. Like every task: <see cref="Step"/>,
/// <see cref="DefaultOptions"/> and <see cref="CreateTrainer"/>; a test pass is
/// <c>trainer.OneEpoch(Phase.Testing, testLoader)</c>, its table <c>trainer.Metrics.ToString()</c>.
/// Batches are MCDetection's [images [B x 3 x H x W], boxes [B x M x 4], labels [B x M]].
/// </summary>
public static class DetectionTraining
{
    /// <summary>NMS settings used for evaluation (mAP wants low-score detections too, COCO-style).</summary>
    /// <param name="NmsIou">NMS IoU threshold.</param>
    /// <param name="ScoreThreshold">Lowest score kept.</param>
    /// <param name="MaxDetections">Most detections per image.</param>
    /// <param name="MultiLabel">One candidate per box and class above the threshold (see <see cref="YOLOv3.Postprocess"/>).</param>
    public sealed record EvalSettings(double NmsIou = 0.5, double ScoreThreshold = 0.01, int MaxDetections = 100, bool MultiLabel = false);

    /// <summary>
    /// The trainer's step: forward, loss; outside training also NMS and a <paramref name="metrics"/> update
    /// (so the trainer can keep the best validation <c>map50</c>, fixing the course's inverted "best" rule).
    /// The evaluation half syncs with the host (NMS's scan and mAP's matching run there): validation and testing only.
    /// </summary>
    public static TrainingStep Step(YOLOv3 model, CustomYOLOv3Loss loss, MeanAveragePrecision metrics, EvalSettings? eval = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(loss);
        ArgumentNullException.ThrowIfNull(metrics);
        eval ??= new EvalSettings();
        return (batch, phase) =>
        {
            if (batch.Length < 3) throw new ArgumentException($"A detection batch is [images, boxes, labels]; got {batch.Length} tensors.");
            var (images, boxes, labels) = (batch[0], batch[1], batch[2]);
            var pred = model.call(images);
            var l = loss.call(pred, (boxes, labels));
            if (phase != Phase.Training)
                using (no_grad())
                {
                    metrics.ImageSize ??= (images.shape[3], images.shape[2]);   // pixel areas for COCO's small/medium/large
                    metrics.Update(YOLOv3.Postprocess(pred.scores, pred.boxes, pred.logits, eval.NmsIou, eval.ScoreThreshold, eval.MaxDetections, eval.MultiLabel), boxes, labels);
                }
            return l;
        };
    }

    /// <summary>
    /// A trainer for <paramref name="model"/> with <see cref="Step"/> and one <see cref="MeanAveragePrecision"/> over the
    /// model's classes, shared by step and trainer: after a validation or test pass, <c>trainer.Metrics</c> holds its
    /// detections (per-class AP, precision-recall curves).
    /// </summary>
    /// <param name="model">The detector (already on <paramref name="device"/>).</param>
    /// <param name="optimizer">Steps the trainable parameters; null for evaluation only.</param>
    /// <param name="loss">The criterion, on the model's device.</param>
    /// <param name="device">Where batches go (null: <see cref="Runtime.Device.Default"/>).</param>
    /// <param name="eval">NMS settings of validation and test passes.</param>
    public static Trainer<MeanAveragePrecision> CreateTrainer(YOLOv3 model, optim.Optimizer? optimizer, CustomYOLOv3Loss loss,
        torch.Device? device = null, EvalSettings? eval = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        eval ??= new EvalSettings();
        var metrics = new MeanAveragePrecision((int)model.NumClasses, eval.MaxDetections);
        return new(model, optimizer, Step(model, loss, metrics, eval), metrics, device);
    }

    /// <summary>
    /// The defaults for MNIST clutter: best checkpoint by validation <c>map50</c>, no early stopping (the cosine
    /// schedule needs its whole length; the best epoch is kept anyway), and the learning rate of
    /// <paramref name="optimizer"/> cosine-decayed over <paramref name="epochs"/> to <paramref name="minLearningRateFactor"/> of it.
    /// </summary>
    /// <param name="optimizer">The trainer's optimizer: its current learning rate is the schedule's peak.</param>
    /// <param name="epochs">Epochs to run.</param>
    /// <param name="runName">Checkpoint folder name (null: in memory only).</param>
    /// <param name="minLearningRateFactor">The last epochs' learning rate, as a share of the first.</param>
    public static TrainOptions DefaultOptions(optim.Optimizer optimizer, int epochs, string? runName = null, double minLearningRateFactor = 0.05)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        double lr = optimizer.ParamGroups.First().LearningRate;
        return new TrainOptions
        {
            Epochs = epochs,
            Monitor = "map50",
            MonitorPhase = Phase.Validation,
            HigherIsBetter = true,
            Patience = null,
            Scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs, lr * minLearningRateFactor),
            RunName = runName,
        };
    }
}

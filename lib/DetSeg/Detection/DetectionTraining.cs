using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Detection;

/// <summary>
/// Glue between <see cref="YOLOv3"/>, <see cref="CustomYOLOv3Loss"/>, <see cref="MeanAveragePrecision"/> and the
/// shared <see cref="Trainer"/>: the per-batch step and a test-set evaluation. Batches are MCDetection's
/// [images [B x 3 x H x W], boxes [B x M x 4], labels [B x M]].
/// </summary>
public static class DetectionTraining
{
    /// <summary>NMS settings used for evaluation (mAP wants low-score detections too, COCO-style).</summary>
    public sealed record EvalSettings(double NmsIou = 0.5, double ScoreThreshold = 0.01, int MaxDetections = 100);

    /// <summary>
    /// The trainer's step: forward, loss; outside training also NMS and a <paramref name="metrics"/> update
    /// (so the trainer can keep the best validation <c>map50</c>, fixing the course's inverted "best" rule).
    /// </summary>
    public static TrainingStep Step(YOLOv3 model, CustomYOLOv3Loss loss, MeanAveragePrecision? metrics = null, EvalSettings? eval = null)
    {
        eval ??= new EvalSettings();
        return (batch, phase) =>
        {
            if (batch.Length < 3) throw new ArgumentException($"A detection batch is [images, boxes, labels]; got {batch.Length} tensors.");
            var (images, boxes, labels) = (batch[0], batch[1], batch[2]);
            var pred = model.call(images);
            var l = loss.call(pred, (boxes, labels));
            if (phase != Phase.Training && metrics is not null)
                using (no_grad())
                    metrics.Update(YOLOv3.Postprocess(pred.scores, pred.boxes, pred.logits, eval.NmsIou, eval.ScoreThreshold, eval.MaxDetections), boxes, labels);
            return l;
        };
    }

    /// <summary>
    /// Runs <paramref name="model"/> over <paramref name="loader"/> in eval mode and returns the filled evaluator,
    /// its <see cref="MeanAveragePrecision.ImageSize"/> set from the first batch (pixel areas for COCO's summary).
    /// </summary>
    public static MeanAveragePrecision Evaluate(YOLOv3 model, IEnumerable<Tensor[]> loader, EvalSettings? eval = null, Action<int>? onBatch = null)
    {
        eval ??= new EvalSettings();
        var metrics = new MeanAveragePrecision((int)model.NumClasses, eval.MaxDetections);
        bool wasTraining = model.training;
        model.eval();
        try
        {
            int i = 0;
            using var _ = no_grad();
            using var e = loader.GetEnumerator();
            while (true)
            {
                using var scope = NewDisposeScope();
                if (!e.MoveNext()) break;
                var dev = model.anchors.device;
                var batch = e.Current;
                metrics.ImageSize ??= (batch[0].shape[3], batch[0].shape[2]);   // pixel areas for COCO's small/medium/large
                using var det = model.Detect(batch[0].to(dev), eval.NmsIou, eval.ScoreThreshold, eval.MaxDetections);
                metrics.Update(det, batch[1], batch[2]);
                onBatch?.Invoke(++i);
            }
        }
        finally { model.train(wasTraining); }
        return metrics;
    }
}

using DetSeg.Metrics;
using DetSeg.Segmentation;
using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Segmentation;

public class SegmentationPlotsTests
{
    sealed class Items(List<Tensor[]> items) : DetSeg.Data.IDataset<Tensor[]>
    {
        public int Count => items.Count;
        public Tensor[] this[int index] => items[index];
    }

    static EpochResult R(Phase p, int e, double v) =>
        new(p, e, SegmentationPlots.CourseCurves.ToDictionary(m => m, m => v + e), 1.0);

    [Fact]
    public void Curves_HasTrainAndValidationPerMetric_AndMarksTheBestEpoch()
    {
        var history = Enumerable.Range(0, 3).Select(e => new EpochLog(e, R(Phase.Training, e, 0.1), R(Phase.Validation, e, 0.2), 1e-3, e == 1)).ToList();
        var ck = Checkpoint.Capture(nn.Linear(1, 1), null, 1, new Dictionary<string, double>(), new Dictionary<string, double> { ["best_value"] = 1.2 });
        var result = new TrainResult { History = history, Best = ck, StopReason = StopReason.Completed, StopMessage = "", Options = SegmentationTraining.DefaultOptions() };
        var fig = TrainingPlots.Curves(result, SegmentationPlots.CourseCurves);
        Assert.Equal(12, fig.TraceCount); // 6 panels x (training, validation)
        Assert.Contains("epoch 1", fig.Title);
        Assert.Contains("\"best\"", fig.ToJson());
    }

    [Fact]
    public void Curves_LeaveOutAPhaseThatNeverMeasuredAMetric_AndNameUnknownMetrics()
    {
        // mAP is NaN in training (not measured there): its panel gets the validation curve only.
        static EpochResult D(Phase p, int e) => new(p, e, new Dictionary<string, double> { ["loss"] = 1.0 / (e + 1), ["map50"] = p == Phase.Training ? double.NaN : 0.1 * e }, 1.0);
        var history = Enumerable.Range(0, 3).Select(e => new EpochLog(e, D(Phase.Training, e), D(Phase.Validation, e), 1e-3, true)).ToList();
        var result = new TrainResult { History = history, Best = null, StopReason = StopReason.Completed, StopMessage = "", Options = SegmentationTraining.DefaultOptions() };
        var fig = TrainingPlots.Curves(result, ["loss", "map50"], title: "detector");
        Assert.Equal(3, fig.TraceCount); // loss: training + validation; map50: validation only
        Assert.Equal("detector", fig.Title);
        var e = Assert.Throws<ArgumentException>(() => TrainingPlots.Curves(result, ["mean_iou"]));
        Assert.Contains("map50", e.Message);
    }

    [Fact]
    public void Overlays_ThreePanelsPerImage_PaddingGetsItsOwnColour()
    {
        var model = new SemanticSegmentor(3, 2, width: 2);
        var mask = zeros(16, 16, ScalarType.Int64);
        mask[0] = tensor(-1L);
        mask[5, 5] = tensor(1L);
        var data = new Items([[rand(3, 16, 16), mask], [rand(3, 16, 16), mask.clone()]]);
        var fig = SegmentationPlots.Overlays(model, data, [0, 1]);
        // Per row: image (1 trace) + truth (image, mask) + prediction (image, mask); the first row's truth also
        // carries the legend (one point each for pedestrian and padding): 2 x 5 + 2.
        Assert.Equal(12, fig.TraceCount);
        Assert.Contains("padding", fig.ToJson());
        Assert.Throws<ArgumentException>(() => SegmentationPlots.Overlays(model, data, []));
    }

    [Fact]
    public void Confusion_RowNormalized_DiagonalIsRecall()
    {
        using var m = new ClassificationMetrics(2);
        // Actual 0,0,0,1 predicted 0,0,1,1: row 0 = [2/3, 1/3], row 1 = [0, 1] (hand computed).
        m.Update(tensor(new long[] { 0, 0, 1, 1 }), tensor(new long[] { 0, 0, 0, 1 }));
        var fig = SegmentationPlots.Confusion(m);
        Assert.Equal(1, fig.TraceCount);
        string json = fig.ToJson();
        Assert.Contains("0.666", json);
        Assert.Contains("pedestrian", json);
    }
}

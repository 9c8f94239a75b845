using System.Globalization;
using System.Text.Json.Nodes;
using DetSeg.Plots;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Detection;

/// <summary>Detection charts: box-size heatmap with anchors, PR curves, and prediction overlays with mistakes marked.</summary>
public static class DetectionPlots
{
    /// <summary>Colour of a correct detection.</summary>
    public const string Correct = "#2ca02c";
    /// <summary>Colour of a false positive (wrong class, duplicate, or misplaced).</summary>
    public const string Wrong = "#d62728";
    /// <summary>Colour of a true box no detection found.</summary>
    public const string Missed = "#ff7f0e";

    /// <summary>
    /// A 2-D histogram of box widths × heights [N x 2] (normalized) with anchor sets on top (each [3 x K x 2]
    /// normalized, y1 / y2 / y3 marked separately), as the course's "Anchor Priors for MNISTClutter" plot.
    /// </summary>
    public static Figure SizeHeatmap(Tensor wh, IReadOnlyDictionary<string, Tensor>? anchorSets = null, int bins = 30, double max = 0.27, string title = "Box sizes and anchor priors")
    {
        if (wh.dim() != 2 || wh.shape[1] != 2) throw new ArgumentException($"wh must be [N x 2], got [{string.Join(", ", wh.shape)}].", nameof(wh));
        var v = wh.detach().to(float64).cpu().contiguous().data<double>().ToArray();
        var z = new double[bins, bins];
        for (int i = 0; i + 1 < v.Length; i += 2)
        {
            int x = (int)(v[i] / max * bins), y = (int)(v[i + 1] / max * bins);
            if (x >= 0 && x < bins && y >= 0 && y < bins) z[y, x]++;
        }
        var centres = new JsonArray(Enumerable.Range(0, bins).Select(i => (JsonNode)Math.Round((i + 0.5) * max / bins, 5)).ToArray());
        var zRows = new JsonArray(Enumerable.Range(0, bins).Select(r => (JsonNode)new JsonArray(Enumerable.Range(0, bins).Select(c => (JsonNode)z[r, c]).ToArray())).ToArray());
        var data = new JsonArray(new JsonObject
        {
            ["type"] = "heatmap", ["x"] = centres, ["y"] = centres.DeepClone(), ["z"] = zRows, ["colorscale"] = "Turbo",
            ["colorbar"] = new JsonObject { ["title"] = new JsonObject { ["text"] = "boxes" } },
            ["hovertemplate"] = "w %{x}, h %{y}: %{z}<extra></extra>",
        });
        string[] setColors = ["white", "red", "lime"];
        string[] symbols = ["x", "circle-open", "diamond-open"];
        int s = 0;
        foreach (var (name, anchors) in anchorSets ?? new Dictionary<string, Tensor>())
        {
            var a = anchors.detach().to(float64).cpu().reshape(3, -1, 2);
            for (int d = 0; d < 3; d++)
            {
                var pts = a[d].contiguous().data<double>().ToArray();
                data.Add(new JsonObject
                {
                    ["type"] = "scatter", ["mode"] = "markers", ["name"] = $"{name} y{d + 1}",
                    ["x"] = new JsonArray(pts.Where((_, i) => i % 2 == 0).Select(p => (JsonNode)p).ToArray()),
                    ["y"] = new JsonArray(pts.Where((_, i) => i % 2 == 1).Select(p => (JsonNode)p).ToArray()),
                    ["marker"] = new JsonObject { ["color"] = setColors[d], ["symbol"] = symbols[s % symbols.Length], ["size"] = 12, ["line"] = new JsonObject { ["width"] = 2, ["color"] = setColors[d] } },
                });
            }
            s++;
        }
        var layout = new JsonObject
        {
            ["title"] = new JsonObject { ["text"] = title },
            ["width"] = 620, ["height"] = 540,
            ["xaxis"] = new JsonObject { ["title"] = new JsonObject { ["text"] = "bounding box width" }, ["range"] = new JsonArray(0, max) },
            ["yaxis"] = new JsonObject { ["title"] = new JsonObject { ["text"] = "bounding box height" }, ["range"] = new JsonArray(0, max) },
            ["legend"] = new JsonObject { ["orientation"] = "h", ["y"] = -0.15 },
        };
        return Figure.Create(data, layout);
    }

    static float[] Floats(Tensor t) => t.numel() == 0 ? [] : t.detach().to(float32).cpu().contiguous().data<float>().ToArray();
    static long[] Longs(Tensor t) => t.numel() == 0 ? [] : t.detach().to(int64).cpu().contiguous().data<long>().ToArray();

    /// <summary>Precision-recall curves (monotone envelope) of every class with ground truth, at one IoU threshold.</summary>
    public static Figure PrCurves(MeanAveragePrecision metrics, double iouThreshold = 0.5, IReadOnlyList<string>? classNames = null)
    {
        var series = new List<Series>();
        var ap = metrics.PerClassAP(iouThreshold);
        for (int c = 0; c < metrics.NumClasses; c++)
        {
            if (double.IsNaN(ap[c])) continue;
            var (rc, pr) = metrics.PrecisionRecall(c, iouThreshold);
            if (rc.Length == 0) { rc = [0]; pr = [0]; }
            string name = classNames?[c] ?? c.ToString(CultureInfo.InvariantCulture);
            series.Add(new Series($"{name} (AP {ap[c]:0.00})", pr, rc));
        }
        if (series.Count == 0) series.Add(new Series("no ground truth", [0.0], [0.0]));
        return Charts.Line(series, $"Precision-recall at IoU {iouThreshold:0.##} (mAP {metrics.MeanAP(iouThreshold):0.000})", "recall", "precision", yRange: (0, 1.02));
    }

    /// <summary>
    /// Test images with their detections above <paramref name="scoreThreshold"/>: correct ones green
    /// ("label score"), false positives red, and true boxes that were missed orange ("miss label").
    /// Images [B x 3 x H x W]; detections and truth as <see cref="Detections"/> and MCDetection's boxes/labels.
    /// </summary>
    public static Figure PredictionGrid(Tensor images, Detections detections, Tensor trueBoxes, Tensor trueLabels,
                                        double scoreThreshold = 0.5, double iouThreshold = 0.5, int columns = 4, IReadOnlyList<string>? classNames = null, int panelWidth = 260)
    {
        long b = images.shape[0];
        double h = images.shape[2], w = images.shape[3];
        string Name(long l) => classNames?[(int)l] ?? l.ToString(CultureInfo.InvariantCulture);
        var figures = new List<Figure>();
        int mistakes = 0;
        for (long i = 0; i < b; i++)
        {
            var s = Floats(detections.Scores[i]);
            var l = Longs(detections.Labels[i]);
            var bx = Floats(detections.Boxes[i]);
            var keep = Enumerable.Range(0, s.Length).Where(j => l[j] >= 0 && s[j] >= scoreThreshold).ToArray();
            var tl = Longs(trueLabels[i]);
            var tbx = Floats(trueBoxes[i]);
            var truth = Enumerable.Range(0, tl.Length).Where(j => tl[j] >= 0).ToArray();
            var (correct, found) = MeanAveragePrecision.MatchImage(
                keep.Select(j => bx[(4 * j)..(4 * j + 4)]).ToArray(), keep.Select(j => l[j]).ToArray(), keep.Select(j => s[j]).ToArray(),
                truth.Select(j => tbx[(4 * j)..(4 * j + 4)]).ToArray(), truth.Select(j => tl[j]).ToArray(), iouThreshold);
            Box ToBox(float[] v, int at, string label, string color) =>
                new((v[at] - v[at + 2] / 2) * w, (v[at + 1] - v[at + 3] / 2) * h, (v[at] + v[at + 2] / 2) * w, (v[at + 1] + v[at + 3] / 2) * h, label, color);
            var boxes = new List<Box>();
            for (int k = 0; k < keep.Length; k++)
                boxes.Add(ToBox(bx, 4 * keep[k], $"{Name(l[keep[k]])} {s[keep[k]]:0.00}", correct[k] ? Correct : Wrong));
            for (int g = 0; g < truth.Length; g++)
                if (!found[g]) boxes.Add(ToBox(tbx, 4 * truth[g], $"miss {Name(tl[truth[g]])}", Missed));
            int errors = correct.Count(c => !c) + found.Count(f => !f);
            mistakes += errors;
            figures.Add(Charts.Image(images[i], boxes, errors == 0 ? $"#{i}" : $"#{i}: {errors} mistake(s)", panelWidth));
        }
        return Charts.Grid(figures, columns, $"Detections ≥ {scoreThreshold:0.##}: green correct, red false positive, orange missed ({mistakes} mistakes)");
    }
}

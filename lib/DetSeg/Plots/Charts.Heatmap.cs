using System.Globalization;
using System.Text.Json.Nodes;
using TorchSharp;

namespace DetSeg.Plots;

public static partial class Charts
{
    /// <summary>
    /// A heatmap of a 2-D tensor (e.g. a confusion matrix or an attention map), row 0 at the top, each cell
    /// labelled with its value. The tensor is copied to the host once.
    /// </summary>
    /// <param name="z">A 2-D tensor [rows x columns] of any numeric type, on any device.</param>
    /// <param name="xLabels">Column labels (as many as columns), or null for 0..n-1.</param>
    /// <param name="yLabels">Row labels (as many as rows), or null for 0..n-1.</param>
    /// <param name="title">Chart title.</param>
    /// <param name="xTitle">X axis title, e.g. <c>"predicted"</c>.</param>
    /// <param name="yTitle">Y axis title, e.g. <c>"actual"</c>.</param>
    /// <param name="textFormat">.NET format of the cell text (e.g. <c>"0.##"</c>, <c>"P1"</c>); null for no text.</param>
    /// <param name="colorscale">A plotly colour scale name (e.g. <c>"Viridis"</c>); null for white to dark blue.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    /// <exception cref="ArgumentException"><paramref name="z"/> is not 2-D, or a label list has the wrong length.</exception>
    public static Figure Heatmap(torch.Tensor z, IReadOnlyList<string>? xLabels = null, IReadOnlyList<string>? yLabels = null,
                                 string title = "", string xTitle = "", string yTitle = "", string? textFormat = "0.##",
                                 string? colorscale = null, int width = 520, int height = 460)
    {
        ArgumentNullException.ThrowIfNull(z);
        if (z.ndim != 2) throw new ArgumentException($"Heatmap needs a 2-D tensor [rows x columns], got shape [{string.Join(", ", z.shape)}].", nameof(z));
        int rows = (int)z.shape[0], cols = (int)z.shape[1];
        using var host = z.detach().to(torch.float64).cpu();
        double[] flat = host.data<double>().ToArray();
        var values = new double[rows, cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) values[r, c] = flat[r * cols + c];
        return Heatmap(values, xLabels, yLabels, title, xTitle, yTitle, textFormat, colorscale, width, height);
    }

    /// <summary>A heatmap of a host array [rows, columns]; see the tensor overload.</summary>
    /// <param name="z">The values [rows, columns].</param>
    /// <param name="xLabels">Column labels, or null for 0..n-1.</param>
    /// <param name="yLabels">Row labels, or null for 0..n-1.</param>
    /// <param name="title">Chart title.</param>
    /// <param name="xTitle">X axis title.</param>
    /// <param name="yTitle">Y axis title.</param>
    /// <param name="textFormat">.NET format of the cell text; null for no text.</param>
    /// <param name="colorscale">A plotly colour scale name (e.g. <c>"Viridis"</c>); null for white to dark blue.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    public static Figure Heatmap(double[,] z, IReadOnlyList<string>? xLabels = null, IReadOnlyList<string>? yLabels = null,
                                 string title = "", string xTitle = "", string yTitle = "", string? textFormat = "0.##",
                                 string? colorscale = null, int width = 520, int height = 460)
    {
        ArgumentNullException.ThrowIfNull(z);
        int rows = z.GetLength(0), cols = z.GetLength(1);
        var xs = Labels(xLabels, cols, nameof(xLabels), "columns");
        var ys = Labels(yLabels, rows, nameof(yLabels), "rows");
        var zRows = new JsonArray();
        var textRows = new JsonArray();
        for (int r = 0; r < rows; r++)
        {
            var row = new double[cols];
            for (int c = 0; c < cols; c++) row[c] = z[r, c];
            zRows.Add(Numbers(row));
            if (textFormat is not null)
                textRows.Add(Strings(row.Select(v => v.ToString(textFormat, CultureInfo.InvariantCulture))));
        }
        var trace = new JsonObject
        {
            ["type"] = "heatmap",
            ["z"] = zRows,
            ["x"] = Strings(xs),
            ["y"] = Strings(ys),
            // Low values light, high values dark (plotly's own "Blues" runs the other way).
            ["colorscale"] = colorscale is null ? new JsonArray(new JsonArray(0, "#f7fbff"), new JsonArray(1, "#08306b")) : colorscale,
            ["hovertemplate"] = "%{y} / %{x}: %{z}<extra></extra>",
        };
        if (textFormat is not null)
        {
            trace["text"] = textRows;
            trace["texttemplate"] = "%{text}";
        }
        var layout = BaseLayout(title, width, height, legend: false);
        // Categorical axes, row 0 on top as a matrix is read.
        layout["xaxis"] = Axis(xTitle, new JsonObject { ["type"] = "category", ["side"] = "bottom" });
        layout["yaxis"] = Axis(yTitle, new JsonObject { ["type"] = "category", ["autorange"] = "reversed" });
        return Figure.Create(new JsonArray(trace), layout);
    }

    static IReadOnlyList<string> Labels(IReadOnlyList<string>? labels, int count, string name, string what)
    {
        if (labels is null) return Enumerable.Range(0, count).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToList();
        if (labels.Count != count) throw new ArgumentException($"{name} has {labels.Count} labels but the data has {count} {what}.", name);
        return labels;
    }
}

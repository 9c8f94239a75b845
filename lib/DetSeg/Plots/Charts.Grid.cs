using System.Text.Json.Nodes;

namespace DetSeg.Plots;

public static partial class Charts
{
    const int LegendWidth = 130;

    /// <summary>
    /// Puts figures side by side in one figure, row by row: e.g. image, target mask and predicted mask, or
    /// one detection per panel. Each panel keeps its own axes, shapes, labels and title.
    /// </summary>
    /// <param name="figures">The panels (figures built by <see cref="Charts"/>, not grids themselves).</param>
    /// <param name="columns">Panels per row.</param>
    /// <param name="title">Title above the grid.</param>
    /// <param name="panelWidth">Width of one panel in pixels (default: the widest figure's).</param>
    /// <param name="panelHeight">Height of one panel in pixels (default: the tallest figure's).</param>
    /// <exception cref="ArgumentException">No figures, fewer than one column, or a figure that is itself a grid.</exception>
    public static Figure Grid(IReadOnlyList<Figure> figures, int columns = 2, string title = "", int? panelWidth = null, int? panelHeight = null)
    {
        ArgumentNullException.ThrowIfNull(figures);
        if (figures.Count == 0) throw new ArgumentException("A grid needs at least one figure.", nameof(figures));
        if (columns < 1) throw new ArgumentException($"columns must be at least 1, not {columns}.", nameof(columns));
        columns = Math.Min(columns, figures.Count);
        int rows = (figures.Count + columns - 1) / columns;
        int w = panelWidth ?? figures.Max(f => f.Width), h = panelHeight ?? figures.Max(f => f.Height);
        double hGap = columns > 1 ? 0.08 : 0, vGap = rows > 1 ? 0.12 : 0;

        var data = new JsonArray();
        var layout = BaseLayout(title, w * columns, h * rows, legend: false);
        bool legend = false;
        for (int i = 0; i < figures.Count; i++)
        {
            var (panelData, panelLayout) = figures[i].CloneSpec();
            if (panelLayout.ContainsKey("xaxis2"))
                throw new ArgumentException($"Figure {i} is already a grid; pass its panels instead.", nameof(figures));
            string s = i == 0 ? "" : (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
            int row = i / columns, col = i % columns;
            double x0 = (double)col / columns + hGap / 2, x1 = (double)(col + 1) / columns - hGap / 2;
            double y1 = 1 - (double)row / rows - vGap / 2, y0 = 1 - (double)(row + 1) / rows + vGap / 2;

            foreach (var trace in panelData.OfType<JsonObject>())
            {
                trace["xaxis"] = "x" + s;
                trace["yaxis"] = "y" + s;
                if (trace["type"]?.GetValue<string>() == "heatmap")
                    trace["colorbar"] = new JsonObject { ["x"] = x1 + 0.005, ["xanchor"] = "left", ["y"] = (y0 + y1) / 2, ["len"] = y1 - y0, ["thickness"] = 12 };
                data.Add(trace.DeepClone());
            }
            legend |= panelLayout["showlegend"]?.GetValue<bool>() ?? false;

            var xaxis = panelLayout["xaxis"]?.DeepClone() as JsonObject ?? [];
            var yaxis = panelLayout["yaxis"]?.DeepClone() as JsonObject ?? [];
            xaxis["domain"] = Range(x0, x1);
            xaxis["anchor"] = "y" + s;
            yaxis["domain"] = Range(y0, y1);
            yaxis["anchor"] = "x" + s;
            if (yaxis["scaleanchor"] is not null) yaxis["scaleanchor"] = "x" + s;
            layout["xaxis" + s] = xaxis;
            layout["yaxis" + s] = yaxis;

            foreach (var key in new[] { "shapes", "annotations" })
                foreach (var item in (panelLayout[key] as JsonArray ?? []).OfType<JsonObject>())
                {
                    var copy = (JsonObject)item.DeepClone();
                    copy["xref"] = Remap(copy["xref"]?.GetValue<string>() ?? "x", s);
                    copy["yref"] = Remap(copy["yref"]?.GetValue<string>() ?? "y", s);
                    Append(layout, key, copy);
                }
            string panelTitle = panelLayout["title"]?["text"]?.GetValue<string>() ?? "";
            if (panelTitle.Length > 0)
                Append(layout, "annotations", new JsonObject
                {
                    ["text"] = panelTitle,
                    ["xref"] = $"x{s} domain",
                    ["yref"] = $"y{s} domain",
                    ["x"] = 0.5,
                    ["y"] = 1.01,
                    ["xanchor"] = "center",
                    ["yanchor"] = "bottom",
                    ["showarrow"] = false,
                    ["font"] = new JsonObject { ["size"] = 14 },
                });
        }
        layout["showlegend"] = legend;
        if (legend)
        {
            // Room for the legend right of the panels, so a wide grid does not push it out of view.
            layout["width"] = w * columns + LegendWidth;
            layout["margin"]!["r"] = LegendWidth;
            layout["legend"] = new JsonObject { ["x"] = 1.01, ["xanchor"] = "left", ["y"] = 1, ["yanchor"] = "top" };
        }
        return Figure.Create(data, layout);
    }

    // "x" -> "x3", "y domain" -> "y3 domain"; "paper" stays the whole figure.
    static string Remap(string reference, string suffix) => reference switch
    {
        "x" or "y" => reference + suffix,
        "x domain" or "y domain" => reference[0] + suffix + " domain",
        _ => reference,
    };
}

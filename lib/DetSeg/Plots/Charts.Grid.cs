using System.Text.Json.Nodes;

namespace DetSeg.Plots;

public static partial class Charts
{
    const int LegendWidth = 130;

    /// <summary>
    /// Puts figures side by side in one figure, row by row: e.g. image, target mask and predicted mask, or
    /// one detection per panel. Each panel keeps its own axes, shapes, labels and title.
    /// </summary>
    /// <remarks>
    /// The grid is laid out in pixels: each panel's plot area is the size given (default: the largest plot area of
    /// the figures, so image panels keep their aspect with no blank band), and the gaps between panels hold exactly
    /// what sits there — tick labels and axis titles of one panel, the panel title of the next — so none overlap.
    /// </remarks>
    /// <param name="figures">The panels (figures built by <see cref="Charts"/>, not grids themselves).</param>
    /// <param name="columns">Panels per row.</param>
    /// <param name="title">Title above the grid.</param>
    /// <param name="panelWidth">Width of one panel's plot area in pixels (default: the widest figure's plot area).</param>
    /// <param name="panelHeight">Height of one panel's plot area in pixels (default: the tallest figure's plot area).</param>
    /// <exception cref="ArgumentException">No figures, fewer than one column, or a figure that is itself a grid.</exception>
    public static Figure Grid(IReadOnlyList<Figure> figures, int columns = 2, string title = "", int? panelWidth = null, int? panelHeight = null)
    {
        ArgumentNullException.ThrowIfNull(figures);
        if (figures.Count == 0) throw new ArgumentException("A grid needs at least one figure.", nameof(figures));
        if (columns < 1) throw new ArgumentException($"columns must be at least 1, not {columns}.", nameof(columns));
        columns = Math.Min(columns, figures.Count);
        int rows = (figures.Count + columns - 1) / columns;
        var specs = figures.Select(f => f.CloneSpec()).ToList();
        for (int i = 0; i < specs.Count; i++)
            if (specs[i].Layout.ContainsKey("xaxis2"))
                throw new ArgumentException($"Figure {i} is already a grid; pass its panels instead.", nameof(figures));

        int pw = panelWidth ?? figures.Select((f, i) => f.Width - Margin(specs[i].Layout, "l") - Margin(specs[i].Layout, "r")).Max();
        int ph = panelHeight ?? figures.Select((f, i) => f.Height - Margin(specs[i].Layout, "t") - Margin(specs[i].Layout, "b")).Max();
        if (pw <= 0 || ph <= 0) throw new ArgumentException($"A grid panel needs a positive plot area, not {pw}x{ph} pixels.", nameof(panelWidth));
        bool Has(Func<JsonObject, bool> test) => specs.Any(sp => test(sp.Layout));
        bool panelTitles = Has(l => !string.IsNullOrEmpty(l["title"]?["text"]?.GetValue<string>()));
        bool xTicks = Has(l => l["xaxis"]?["showticklabels"]?.GetValue<bool>() ?? true);
        bool yTicks = Has(l => l["yaxis"]?["showticklabels"]?.GetValue<bool>() ?? true);
        bool xTitles = Has(l => l["xaxis"]?["title"] is not null), yTitles = Has(l => l["yaxis"]?["title"] is not null);
        bool colorbars = specs.Any(sp => sp.Data.OfType<JsonObject>().Any(t => t["type"]?.GetValue<string>() == "heatmap"));
        // Pixels below a panel (tick labels, x title) and above the next (its title); left of a panel (tick labels, y title).
        int below = (xTicks ? 24 : 0) + (xTitles ? 26 : 0), above = panelTitles ? 28 : 0;
        int beside = (yTicks ? 48 : 0) + (yTitles ? 24 : 0);
        int vGap = rows > 1 ? below + above + 10 : 0, hGap = columns > 1 ? beside + (colorbars ? 70 : 0) + 16 : 0;
        int plotW = columns * pw + (columns - 1) * hGap, plotH = rows * ph + (rows - 1) * vGap;
        var margin = new JsonObject
        {
            ["l"] = beside + 12,
            ["r"] = 12 + (colorbars ? 70 : 0),
            ["t"] = (string.IsNullOrEmpty(title) ? 8 : TitleTop + 34) + above,
            ["b"] = below + 12,
        };

        var data = new JsonArray();
        var layout = BaseLayout(title, plotW + (int)margin["l"]! + (int)margin["r"]!, plotH + (int)margin["t"]! + (int)margin["b"]!, legend: false);
        layout["margin"] = margin;
        bool legend = false;
        for (int i = 0; i < figures.Count; i++)
        {
            var (panelData, panelLayout) = specs[i];
            string s = i == 0 ? "" : (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
            int row = i / columns, col = i % columns;
            double x0 = (double)col * (pw + hGap) / plotW, x1 = x0 + (double)pw / plotW;
            double y1 = 1 - (double)row * (ph + vGap) / plotH, y0 = y1 - (double)ph / plotH;

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
                    ["y"] = 1,
                    ["xanchor"] = "center",
                    ["yanchor"] = "bottom",
                    ["yshift"] = 4,
                    ["showarrow"] = false,
                    ["font"] = new JsonObject { ["size"] = 14 },
                });
        }
        layout["showlegend"] = legend;
        if (legend)
        {
            // Room for the legend right of the panels, so a wide grid does not push it out of view.
            layout["width"] = (int)layout["width"]! + LegendWidth;
            margin["r"] = (int)margin["r"]! + LegendWidth;
            layout["legend"] = new JsonObject { ["x"] = 1.01, ["xanchor"] = "left", ["y"] = 1, ["yanchor"] = "top" };
        }
        return Figure.Create(data, layout);
    }

    static int Margin(JsonObject layout, string side) => layout["margin"]?[side]?.GetValue<int>() ?? 0;

    // "x" -> "x3", "y domain" -> "y3 domain"; "paper" stays the whole figure.
    static string Remap(string reference, string suffix) => reference switch
    {
        "x" or "y" => reference + suffix,
        "x domain" or "y domain" => reference[0] + suffix + " domain",
        _ => reference,
    };
}

using System.Text.Json.Nodes;

namespace DetSeg.Plots;

/// <summary>One named series of a line or bar chart; <paramref name="X"/> defaults to 0, 1, 2, ...</summary>
/// <param name="Name">Legend name (series with the same name share a colour across a grid).</param>
/// <param name="Y">The values.</param>
/// <param name="X">The x positions, as many as <paramref name="Y"/>; null for 0..n-1.</param>
public sealed record Series(string Name, IReadOnlyList<double> Y, IReadOnlyList<double>? X = null);

/// <summary>One panel of <see cref="Charts.LineGrid"/>: a titled line chart.</summary>
/// <param name="Title">The panel title, e.g. <c>"loss"</c>.</param>
/// <param name="Series">The curves in this panel.</param>
/// <param name="YTitle">The y axis title.</param>
public sealed record Panel(string Title, IReadOnlyList<Series> Series, string YTitle = "");

public static partial class Charts
{
    /// <summary>
    /// A line chart of several series, with an optional dashed vertical marker (e.g. the best epoch).
    /// </summary>
    /// <param name="series">The curves; each needs as many x as y values.</param>
    /// <param name="title">Chart title.</param>
    /// <param name="xTitle">X axis title.</param>
    /// <param name="yTitle">Y axis title.</param>
    /// <param name="markerX">Where to draw the vertical marker, or null for none.</param>
    /// <param name="markerLabel">Text beside the marker.</param>
    /// <param name="yRange">Fixed y range (min, max), or null to fit the data.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    /// <exception cref="ArgumentException">No series, or a series whose x and y differ in length.</exception>
    public static Figure Line(IEnumerable<Series> series, string title = "", string xTitle = "", string yTitle = "",
                              double? markerX = null, string? markerLabel = null, (double Min, double Max)? yRange = null,
                              int width = 700, int height = 420)
    {
        ArgumentNullException.ThrowIfNull(series);
        var list = series.ToList();
        if (list.Count == 0) throw new ArgumentException("A line chart needs at least one series.", nameof(series));
        var colors = new Dictionary<string, int>();
        var data = new JsonArray(list.Select(s => (JsonNode?)LineTrace(s, colors)).ToArray());
        var layout = BaseLayout(title, width, height, legend: list.Count > 1);
        layout["xaxis"] = Axis(xTitle);
        layout["yaxis"] = Axis(yTitle, yRange is { } r ? new JsonObject { ["range"] = Range(r.Min, r.Max) } : null);
        if (markerX is { } m) AddVerticalMarker(layout, m, markerLabel);
        return Figure.Create(data, layout);
    }

    /// <summary>
    /// A grid of line charts sharing a legend and an optional vertical marker, e.g. loss and each metric per
    /// epoch for train and validation. Series with the same name get the same colour in every panel.
    /// </summary>
    /// <param name="panels">The panels, filled row by row.</param>
    /// <param name="columns">Panels per row.</param>
    /// <param name="title">Title above the grid.</param>
    /// <param name="xTitle">X axis title of every panel.</param>
    /// <param name="markerX">Where to draw the vertical marker in every panel, or null.</param>
    /// <param name="markerLabel">Text beside the marker.</param>
    /// <param name="panelWidth">Width of one panel in pixels.</param>
    /// <param name="panelHeight">Height of one panel in pixels.</param>
    public static Figure LineGrid(IEnumerable<Panel> panels, int columns = 2, string title = "", string xTitle = "",
                                  double? markerX = null, string? markerLabel = null, int panelWidth = 320, int panelHeight = 260)
    {
        ArgumentNullException.ThrowIfNull(panels);
        var list = panels.ToList();
        if (list.Count == 0) throw new ArgumentException("A line grid needs at least one panel.", nameof(panels));
        var colors = new Dictionary<string, int>();
        var seen = new HashSet<string>();
        var figures = list.Select(p =>
        {
            if (p.Series.Count == 0) throw new ArgumentException($"Panel '{p.Title}' has no series.", nameof(panels));
            var data = new JsonArray(p.Series.Select(s =>
            {
                var trace = LineTrace(s, colors);
                trace["legendgroup"] = s.Name;
                trace["showlegend"] = seen.Add(s.Name); // one legend entry per name across the grid
                return (JsonNode?)trace;
            }).ToArray());
            var layout = BaseLayout(p.Title, panelWidth, panelHeight);
            layout["xaxis"] = Axis(xTitle);
            layout["yaxis"] = Axis(p.YTitle);
            if (markerX is { } m) AddVerticalMarker(layout, m, markerLabel);
            return Figure.Create(data, layout);
        }).ToList();
        return Grid(figures, columns, title, panelWidth, panelHeight);
    }

    static JsonObject LineTrace(Series s, Dictionary<string, int> colors)
    {
        ArgumentNullException.ThrowIfNull(s);
        if (s.X is not null && s.X.Count != s.Y.Count)
            throw new ArgumentException($"Series '{s.Name}' has {s.X.Count} x values but {s.Y.Count} y values.", nameof(s));
        if (!colors.TryGetValue(s.Name, out int color)) colors[s.Name] = color = colors.Count;
        var x = s.X ?? Enumerable.Range(0, s.Y.Count).Select(i => (double)i).ToList();
        return new JsonObject
        {
            ["type"] = "scatter",
            ["mode"] = s.Y.Count <= 40 ? "lines+markers" : "lines",
            ["name"] = s.Name,
            ["x"] = Numbers(x),
            ["y"] = Numbers(s.Y),
            ["line"] = new JsonObject { ["color"] = Palette.Color(color) },
            ["marker"] = new JsonObject { ["color"] = Palette.Color(color) },
        };
    }

    // A dashed line across the whole plot height ("y domain" = the plot's own 0..1, also inside a grid).
    static void AddVerticalMarker(JsonObject layout, double x, string? label)
    {
        Append(layout, "shapes", new JsonObject
        {
            ["type"] = "line",
            ["xref"] = "x",
            ["yref"] = "y domain",
            ["x0"] = x,
            ["x1"] = x,
            ["y0"] = 0,
            ["y1"] = 1,
            ["line"] = new JsonObject { ["color"] = "#555", ["width"] = 1.5, ["dash"] = "dash" },
        });
        if (!string.IsNullOrEmpty(label))
            Append(layout, "annotations", new JsonObject
            {
                ["xref"] = "x",
                ["yref"] = "y domain",
                ["x"] = x,
                ["y"] = 1,
                ["text"] = label,
                ["showarrow"] = false,
                ["xanchor"] = "left",
                ["yanchor"] = "top",
                ["font"] = new JsonObject { ["size"] = 11, ["color"] = "#555" },
            });
    }

    static void Append(JsonObject layout, string key, JsonNode item)
    {
        if (layout[key] is not JsonArray list) layout[key] = list = [];
        list.Add(item);
    }
}

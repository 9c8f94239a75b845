using System.Text.Json.Nodes;

namespace DetSeg.Plots;

/// <summary>
/// Builders for every chart the notebooks show: line charts and grids of them (metric curves), heatmaps with
/// cell text, bar charts, images with boxes, images with mask overlays, and grids of any of these.
/// Tensors go in; each builder copies them to the host once.
/// </summary>
public static partial class Charts
{
    /// <summary>Pixels from the figure's top edge to its title's: the mode bar (zoom, save) sits above, in the top ~30 px.</summary>
    internal const int TitleTop = 34;

    /// <summary>Top margin of a figure with a title: the mode bar, the title, a gap.</summary>
    const int TitledTop = TitleTop + 34;

    /// <summary>A layout with title, size and margins that suit notebook outputs.</summary>
    static JsonObject BaseLayout(string title, int width, int height, bool legend = true)
    {
        if (width <= 0 || height <= 0)
            throw new ArgumentException($"A figure needs a positive size, not {width}x{height} pixels.", nameof(width));
        var layout = new JsonObject
        {
            ["width"] = width,
            ["height"] = height,
            ["margin"] = new JsonObject { ["l"] = 60, ["r"] = 20, ["t"] = string.IsNullOrEmpty(title) ? 30 : TitledTop, ["b"] = 50 },
            ["showlegend"] = legend,
        };
        // Placed in pixels below the mode bar, which plotly otherwise draws over a long centred title.
        if (!string.IsNullOrEmpty(title))
            layout["title"] = new JsonObject { ["text"] = title, ["yref"] = "container", ["y"] = 1 - (double)TitleTop / height, ["yanchor"] = "top" };
        return layout;
    }

    static JsonObject Axis(string title, JsonObject? extra = null)
    {
        var axis = extra ?? new JsonObject();
        if (!string.IsNullOrEmpty(title)) axis["title"] = new JsonObject { ["text"] = title };
        return axis;
    }

    static JsonArray Numbers(IEnumerable<double> values) => new(values.Select(v => double.IsFinite(v) ? JsonValue.Create(v) : null).ToArray<JsonNode?>());

    static JsonArray Strings(IEnumerable<string> values) => new(values.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());

    static JsonArray Range(double min, double max) => new(min, max);
}

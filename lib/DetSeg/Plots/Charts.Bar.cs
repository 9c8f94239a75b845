using System.Globalization;
using System.Text.Json.Nodes;

namespace DetSeg.Plots;

public static partial class Charts
{
    /// <summary>
    /// A grouped bar chart: one bar per category for each series (e.g. accuracy, recall, precision per class),
    /// each bar labelled with its value.
    /// </summary>
    /// <param name="categories">The x categories (e.g. class names).</param>
    /// <param name="series">The bar groups; each needs one value per category (their X is ignored).</param>
    /// <param name="title">Chart title.</param>
    /// <param name="yTitle">Y axis title.</param>
    /// <param name="yRange">Fixed y range (min, max), or null to fit.</param>
    /// <param name="textFormat">.NET format of the bar labels; null for none.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    /// <exception cref="ArgumentException">No series, or a series whose length differs from the categories'.</exception>
    public static Figure Bar(IReadOnlyList<string> categories, IEnumerable<Series> series, string title = "", string yTitle = "",
                             (double Min, double Max)? yRange = null, string? textFormat = "0.###", int width = 700, int height = 420)
    {
        ArgumentNullException.ThrowIfNull(categories);
        ArgumentNullException.ThrowIfNull(series);
        var list = series.ToList();
        if (list.Count == 0) throw new ArgumentException("A bar chart needs at least one series.", nameof(series));
        var data = new JsonArray();
        for (int i = 0; i < list.Count; i++)
        {
            var s = list[i];
            if (s.Y.Count != categories.Count)
                throw new ArgumentException($"Series '{s.Name}' has {s.Y.Count} values but there are {categories.Count} categories.", nameof(series));
            var trace = new JsonObject
            {
                ["type"] = "bar",
                ["name"] = s.Name,
                ["x"] = Strings(categories),
                ["y"] = Numbers(s.Y),
                ["marker"] = new JsonObject { ["color"] = Palette.Color(i) },
            };
            if (textFormat is not null)
            {
                trace["text"] = Strings(s.Y.Select(v => v.ToString(textFormat, CultureInfo.InvariantCulture)));
                trace["textposition"] = "auto";
            }
            data.Add(trace);
        }
        var layout = BaseLayout(title, width, height, legend: list.Count > 1);
        layout["barmode"] = "group";
        layout["xaxis"] = Axis("", new JsonObject { ["type"] = "category" });
        layout["yaxis"] = Axis(yTitle, yRange is { } r ? new JsonObject { ["range"] = Range(r.Min, r.Max) } : null);
        return Figure.Create(data, layout);
    }
}

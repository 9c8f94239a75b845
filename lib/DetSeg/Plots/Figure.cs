using System.Text.Json.Nodes;

namespace DetSeg.Plots;

/// <summary>
/// A Plotly chart built by <see cref="Charts"/>. In a notebook it displays itself as HTML (in this project's
/// host and in the stock .NET Interactive kernel alike); <see cref="ToJson"/> gives the figure as plotly.js
/// reads it, <see cref="ToHtml"/> an HTML fragment, <see cref="SaveHtml"/> a self-contained page.
/// </summary>
/// <remarks>
/// Plotly.NET builds and serializes the figure (with its default template) inside a private load context,
/// so Plotly.NET 6 and its FSharp.Core 10.1 never meet the kernel's own FSharp.Core.
/// </remarks>
public class Figure
{
    readonly JsonArray data;
    readonly JsonObject layout;
    string? json;

    private protected Figure(JsonArray data, JsonObject layout)
    {
        this.data = data;
        this.layout = layout;
    }

    // Builders return the subclass that notebooks render as text/html (HtmlFigure.cs explains why).
    internal static Figure Create(JsonArray data, JsonObject layout) => new HtmlFigure(data, layout);

    /// <summary>The chart title ("" when none).</summary>
    public string Title => layout["title"]?["text"]?.GetValue<string>() ?? "";

    /// <summary>Width in pixels.</summary>
    public int Width => layout["width"]?.GetValue<int>() ?? 700;

    /// <summary>Height in pixels.</summary>
    public int Height => layout["height"]?.GetValue<int>() ?? 450;

    /// <summary>How many traces (series, heatmaps, bars, images) the figure holds.</summary>
    public int TraceCount => data.Count;

    /// <summary>The figure JSON (<c>{"data": [...], "layout": {...}}</c>) as Plotly.NET writes it for plotly.js.</summary>
    public string ToJson() => json ??= PlotlyContext.Bridge.FigureJson(SpecJson());

    /// <summary>
    /// An HTML fragment (a div and a script) that draws the chart. It uses plotly.js when the page already has
    /// it (reports inline it once), else loads it once per page through require.js or a single script tag.
    /// </summary>
    public string ToHtml() => PlotlyHtml.Fragment(ToJson(), Width, Height);

    /// <summary>A self-contained HTML page with plotly.js inlined: opens offline.</summary>
    public string ToHtmlPage() => PlotlyHtml.Page(Title.Length > 0 ? Title : "DetSeg figure", ToHtml());

    /// <summary>Writes <see cref="ToHtmlPage"/> to <paramref name="path"/> atomically (temp file, then move).</summary>
    public void SaveHtml(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        Runtime.AtomicFile.WriteAllText(path, ToHtmlPage());
    }

    /// <inheritdoc/>
    public override string ToString()
    {
        var kinds = data.Select(t => t?["type"]?.GetValue<string>() ?? "?").Distinct();
        string title = Title.Length > 0 ? $"'{Title}' " : "";
        return $"Figure {title}({TraceCount} trace(s): {string.Join(", ", kinds)}; {Width}x{Height})";
    }

    /// <summary>The figure as DetSeg describes it to the bridge (plotly's vocabulary).</summary>
    internal string SpecJson() => new JsonObject { ["data"] = data.DeepClone(), ["layout"] = layout.DeepClone() }.ToJsonString();

    /// <summary>Copies of the traces and layout, for composing figures (<see cref="Charts.Grid"/>).</summary>
    internal (JsonArray Data, JsonObject Layout) CloneSpec() => ((JsonArray)data.DeepClone(), (JsonObject)layout.DeepClone());
}

using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.FSharp.Core;
using Plotly.NET;

namespace DetSeg.PlotlyBridge;

/// <summary>
/// The only entry points DetSeg calls (through delegates, from another load context): a figure spec in
/// plotly's own JSON vocabulary goes in, Plotly.NET builds the traces and layout (with its default
/// template) and serializes the figure.
/// </summary>
public static class Bridge
{
    static readonly FSharpFunc<Trace2D, Trace2D> Keep = FuncConvert.FromFunc<Trace2D, Trace2D>(t => t);

    /// <summary>Builds a Plotly.NET chart from <c>{"data":[...],"layout":{...}}</c> and returns its figure JSON.</summary>
    public static string FigureJson(string spec)
    {
        var root = JsonNode.Parse(spec) as JsonObject
                   ?? throw new ArgumentException("A figure spec must be a JSON object with data and layout.", nameof(spec));
        var traces = new List<Trace>();
        foreach (var node in root["data"] as JsonArray ?? [])
        {
            var obj = node as JsonObject ?? throw new ArgumentException("Each trace must be a JSON object.", nameof(spec));
            string type = obj["type"]?.GetValue<string>() ?? "scatter";
            Trace trace = type switch
            {
                "scatter" => Trace2D.initScatter(Keep),
                "heatmap" => Trace2D.initHeatmap(Keep),
                "bar" => Trace2D.initBar(Keep),
                "image" => Trace2D.initImage(Keep),
                _ => throw new ArgumentException($"Trace type '{type}' is not one DetSeg builds.", nameof(spec)),
            };
            foreach (var (key, value) in obj)
                if (key != "type" && value is not null) trace.SetProperty(key, ToClr(value));
            traces.Add(trace);
        }
        var layout = new Layout();
        if (root["layout"] is JsonObject l)
            foreach (var (key, value) in l)
                if (value is not null) layout.SetProperty(key, ToClr(value));

        var chart = GenericChart.ofTraceObjects(true, traces);
        chart = GenericChart.addLayout(layout, chart);
        return GenericChart.toFigureJson(chart);
    }

    /// <summary>The plotly.js that Plotly.NET embeds (for self-contained reports).</summary>
    public static string PlotlyJs()
    {
        Assembly asm = typeof(GenericChart).Assembly;
        string name = asm.GetManifestResourceNames().Single(n => n.EndsWith(".min.js", StringComparison.Ordinal) && n.Contains("plotly-", StringComparison.Ordinal));
        using var stream = asm.GetManifestResourceStream(name)!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>The plotly.js version Plotly.NET embeds, e.g. <c>2.28.0</c>.</summary>
    public static string PlotlyJsVersion() => Globals.PLOTLYJS_VERSION;

    // Newtonsoft (Plotly.NET's serializer) writes dictionaries, arrays and primitives as they are.
    static object? ToClr(JsonNode node) => node switch
    {
        JsonObject o => o.ToDictionary(p => p.Key, p => p.Value is null ? null : ToClr(p.Value)),
        JsonArray a => a.Select(v => v is null ? null : ToClr(v)).ToArray(),
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => v.GetValue<string>(),
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.Number => v.TryGetValue(out long i) ? i : v.GetValue<double>(),
            _ => null,
        },
        _ => null,
    };
}

using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace DetSeg.Notebooks;

/// <summary>
/// Checks a notebook executed elsewhere (e.g. by dotnet-repl, the stock kernel VS Code uses): no cell erred,
/// and every chart came out as text/html. With a reference run of the same notebook (this host's), each cell
/// must also hold as many charts as in the reference, so a chart shown as text or as a property tree is caught.
/// </summary>
static class OutputCheck
{
    const string ChartMarker = "class=\"detseg-plot\"";
    // DetSeg.Runtime.LiveOutput.IdAttribute (the host does not reference the library).
    const string LiveAttribute = "data-detseg-live";

    public static IReadOnlyList<string> Problems(string executedPath, string? referencePath)
    {
        var problems = new List<string>();
        var cells = Cells(executedPath);
        var reference = referencePath is null ? null : Cells(referencePath);
        if (reference is not null && reference.Count != cells.Count)
            problems.Add($"{executedPath} has {cells.Count} cells but the reference {referencePath} has {reference.Count}.");

        for (int i = 0; i < cells.Count; i++)
        {
            var cell = cells[i];
            if (cell["cell_type"]?.GetValue<string>() != "code") continue;
            var outputs = LastFrames((cell["outputs"] as JsonArray ?? []).OfType<JsonObject>());
            foreach (var error in outputs.Where(o => o["output_type"]?.GetValue<string>() == "error"))
                problems.Add($"cell {i + 1}: error {error["ename"]}: {error["evalue"]}");

            int charts = 0;
            foreach (var output in outputs)
            {
                if (output["data"] is not JsonObject data) continue;
                foreach (var (mime, value) in data)
                {
                    string text = Text(value);
                    bool chart = text.Contains(ChartMarker, StringComparison.Ordinal);
                    if (chart && mime == "text/html") charts++;
                    else if (chart || text.StartsWith("Figure ", StringComparison.Ordinal) || text.Contains("DetSeg.Plots.", StringComparison.Ordinal))
                        problems.Add($"cell {i + 1}: a chart came out as {mime}, not text/html");
                }
            }
            if (reference is not null && i < reference.Count)
            {
                int expected = LastFrames((reference[i]["outputs"] as JsonArray ?? []).OfType<JsonObject>())
                    .Count(o => o["data"]?["text/html"] is JsonNode html && Text(html).Contains(ChartMarker, StringComparison.Ordinal));
                if (charts != expected)
                    problems.Add($"cell {i + 1}: {charts} text/html chart(s), the reference run has {expected}");
            }
        }
        return problems;
    }

    static readonly Regex LiveId = new($"{LiveAttribute}=\"([^\"]+)\"", RegexOptions.Compiled);

    /// <summary>
    /// The outputs a reader sees: a display updated in place (its frames carry the same live id) counts once, as its
    /// last frame. dotnet-repl records every update as a new output; VS Code and this host replace the output.
    /// </summary>
    internal static List<JsonObject> LastFrames(IEnumerable<JsonObject> outputs)
    {
        var list = new List<JsonObject>();
        var at = new Dictionary<string, int>();
        foreach (var output in outputs)
        {
            string? id = output["data"]?["text/html"] is JsonNode html && LiveId.Match(Text(html)) is { Success: true } m ? m.Groups[1].Value : null;
            if (id is not null && at.TryGetValue(id, out int index)) { list[index] = output; continue; }
            if (id is not null) at[id] = list.Count;
            list.Add(output);
        }
        return list;
    }

    static List<JsonObject> Cells(string path)
    {
        var root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject
                   ?? throw new InvalidDataException($"{path} is not a JSON object.");
        return (root["cells"] as JsonArray ?? throw new InvalidDataException($"{path} has no cells.")).OfType<JsonObject>().ToList();
    }

    static string Text(JsonNode? value) => value switch
    {
        JsonArray lines => string.Concat(lines.Select(l => l?.GetValue<string>() ?? "")),
        JsonValue v when v.GetValueKind() == System.Text.Json.JsonValueKind.String => v.GetValue<string>(),
        _ => value?.ToJsonString() ?? "",
    };
}

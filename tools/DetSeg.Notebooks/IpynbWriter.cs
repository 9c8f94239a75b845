using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.DotNet.Interactive.Documents;

namespace DetSeg.Notebooks;

/// <summary>
/// Writes an executed notebook: the original .ipynb JSON with each code cell's execution count and outputs
/// filled in, everything else (metadata, cell ids, sources) left as it was. (The Documents library's own
/// writer re-nests the polyglot kernel metadata on a round trip; VS Code expects it where it was.)
/// </summary>
static class IpynbWriter
{
    static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        IndentSize = 1,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static string Write(string originalJson, NotebookRun run)
    {
        var root = JsonNode.Parse(originalJson) as JsonObject
                   ?? throw new InvalidDataException($"{run.Path} is not a JSON object.");
        var cells = root["cells"] as JsonArray ?? throw new InvalidDataException($"{run.Path} has no cells array.");
        if (cells.Count != run.Document.Elements.Count)
            throw new InvalidDataException($"{run.Path}: {cells.Count} cells in the file but {run.Document.Elements.Count} parsed.");
        foreach (var cell in run.Cells.Where(c => c.IsCode))
        {
            var json = (JsonObject)cells[cell.Number - 1]!;
            json["execution_count"] = cell.ExecutionCount > 0 ? cell.ExecutionCount : null;
            json["outputs"] = new JsonArray(run.Document.Elements[cell.Number - 1].Outputs.Select(o => (JsonNode?)Output(o, cell.ExecutionCount)).ToArray());
        }
        return root.ToJsonString(Options) + "\n";
    }

    static JsonObject Output(InteractiveDocumentOutputElement output, int executionCount) => output switch
    {
        TextElement t => new JsonObject { ["output_type"] = "stream", ["name"] = t.Name, ["text"] = Lines(t.Text) },
        ErrorElement e => new JsonObject
        {
            ["output_type"] = "error",
            ["ename"] = e.ErrorName,
            ["evalue"] = e.ErrorValue,
            ["traceback"] = new JsonArray(e.StackTrace.Select(l => (JsonNode?)JsonValue.Create(l)).ToArray()),
        },
        ReturnValueElement r => new JsonObject
        {
            ["output_type"] = "execute_result",
            ["execution_count"] = executionCount,
            ["data"] = Data(r.Data),
            ["metadata"] = new JsonObject(),
        },
        DisplayElement d => new JsonObject { ["output_type"] = "display_data", ["data"] = Data(d.Data), ["metadata"] = new JsonObject() },
        _ => new JsonObject { ["output_type"] = "stream", ["name"] = "stdout", ["text"] = new JsonArray() },
    };

    static JsonObject Data(IDictionary<string, object> data)
    {
        var json = new JsonObject();
        foreach (var (mime, value) in data) json[mime] = Lines(value?.ToString() ?? "");
        return json;
    }

    // nbformat stores multi-line strings as a list of lines, each keeping its newline.
    static JsonArray Lines(string text)
    {
        var lines = new JsonArray();
        int start = 0;
        while (start < text.Length)
        {
            int end = text.IndexOf('\n', start);
            end = end < 0 ? text.Length : end + 1;
            lines.Add(text[start..end]);
            start = end;
        }
        return lines;
    }
}

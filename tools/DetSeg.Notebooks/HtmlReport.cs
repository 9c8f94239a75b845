using System.Globalization;
using System.Net;
using System.Text;
using Markdig;
using Microsoft.DotNet.Interactive.Documents;

namespace DetSeg.Notebooks;

/// <summary>
/// A self-contained HTML page of an executed notebook: markdown rendered, code and outputs styled, images
/// inline, and plotly.js inlined once in the head when any output draws a chart, so it opens offline.
/// </summary>
/// <remarks>
/// The page records its own health in <c>#detseg-check</c> (<c>data-errors</c>: script errors caught;
/// <c>data-plots</c>: charts drawn / chart divs; <c>data-images</c>: images loaded / images;
/// <c>data-external</c>: resources loaded from outside the page;
/// <c>data-overlaps</c>: pairs of text boxes of one chart that intersect — title, axis titles, annotations, legend, mode bar),
/// which CI reads from headless Chromium.
/// </remarks>
static class HtmlReport
{
    static readonly MarkdownPipeline Markdown = new MarkdownPipelineBuilder().UseAdvancedExtensions().Build();

    public static string Render(NotebookRun run, string profile, Func<string> plotlyJs)
    {
        var body = new StringBuilder();
        foreach (var cell in run.Cells)
        {
            var element = run.Document.Elements[cell.Number - 1];
            if (!cell.IsCode)
            {
                string markdown = LocalImages.Inline(Markdig.Markdown.ToHtml(element.Contents, Markdown), System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(run.Path))!);
                body.Append("<section class=\"cell md\">").Append(markdown).Append("</section>\n");
                continue;
            }
            bool failed = run.Failure?.Number == cell.Number;
            string state = failed ? " failed" : cell.Elapsed is null ? " skipped" : "";
            body.Append($"<section class=\"cell code{state}\" id=\"cell-{cell.Number}\">");
            string count = cell.ExecutionCount > 0 ? cell.ExecutionCount.ToString(CultureInfo.InvariantCulture) : " ";
            string time = cell.Elapsed is { } t ? NotebookRunner.Seconds(t) : "not run";
            body.Append($"<div class=\"meta\">cell {cell.Number} · In [{count}] · {time}</div>");
            body.Append("<pre class=\"src\"><code>").Append(WebUtility.HtmlEncode(element.Contents)).Append("</code></pre>");
            foreach (var output in element.Outputs) body.Append(Output(output));
            body.Append("</section>\n");
        }

        string html = body.ToString();
        bool charts = html.Contains("detseg-plot", StringComparison.Ordinal) || html.Contains("Plotly.newPlot", StringComparison.Ordinal);
        string status = run.Succeeded
            ? $"ran in {NotebookRunner.Seconds(run.Elapsed)}"
            : $"<strong>failed at cell {run.Failure!.Number}</strong>: {WebUtility.HtmlEncode(run.Failure.Headline)}";
        return $$"""
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{WebUtility.HtmlEncode(run.Name)}} · DetSeg report</title>
<style>{{Css}}</style>
<script>
window.detsegErrors = [];
window.addEventListener('error', function (e) { window.detsegErrors.push(String(e.message || e)); });
window.addEventListener('unhandledrejection', function (e) { window.detsegErrors.push(String(e.reason)); });
</script>
{{(charts ? "<script type=\"text/javascript\">" + plotlyJs() + "</script>" : "")}}
</head>
<body>
<header><h1>{{WebUtility.HtmlEncode(run.Name)}}</h1>
<p>Profile <code>{{WebUtility.HtmlEncode(profile)}}</code> · executed {{DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)}} UTC · {{status}}</p></header>
<main>
{{html}}
</main>
<div id="detseg-check" hidden></div>
<script>
// Text of one chart that collides: figure title, axis titles, annotations (panel titles, marker labels), the
// legend and the mode bar, each as its bounding box; any two that intersect by more than a pixel are reported.
function textOverlaps() {
  var found = [];
  document.querySelectorAll('div.detseg-plot').forEach(function (div, n) {
    var boxes = [];
    var add = function (kind, el) {
      var r = el.getBoundingClientRect();
      if (r.width < 1 || r.height < 1) return;
      var text = (el.textContent || '').trim();
      if (kind !== 'legend' && kind !== 'modebar' && text === '') return;
      boxes.push({kind: kind, text: text.slice(0, 40), r: r});
    };
    div.querySelectorAll('.g-gtitle text').forEach(function (e) { add('title', e); });
    div.querySelectorAll('[class^="g-x"][class$="title"] text, [class^="g-y"][class$="title"] text').forEach(function (e) { add('axis title', e); });
    // A label with a filled background marks a box on the data (a detection's class): where boxes crowd such
    // labels may touch each other, as the boxes do; they are checked against every other kind of text only.
    div.querySelectorAll('g.annotation').forEach(function (e) {
      var bg = e.querySelector('rect.bg');
      var filled = bg && parseFloat(window.getComputedStyle(bg).fillOpacity || '0') > 0;
      add(filled ? 'box label' : 'annotation', e);
    });
    div.querySelectorAll('g.legend').forEach(function (e) { add('legend', e); });
    div.querySelectorAll('.modebar').forEach(function (e) { add('modebar', e); });
    for (var i = 0; i < boxes.length; i++)
      for (var j = i + 1; j < boxes.length; j++) {
        var a = boxes[i].r, b = boxes[j].r;
        var w = Math.min(a.right, b.right) - Math.max(a.left, b.left), h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (w > 1 && h > 1 && !(boxes[i].kind === 'box label' && boxes[j].kind === 'box label'))
          found.push('chart ' + (n + 1) + ' (' + div.id + '): ' + boxes[i].kind + ' "' + boxes[i].text + '" and ' + boxes[j].kind + ' "' + boxes[j].text + '"');
      }
  });
  return found;
}
window.addEventListener('load', function () {
  setTimeout(function () {
    var divs = document.querySelectorAll('div.detseg-plot');
    var drawn = 0;
    divs.forEach(function (d) { if (d.querySelector('.main-svg')) drawn++; });
    var check = document.getElementById('detseg-check');
    check.setAttribute('data-plots', drawn + '/' + divs.length);
    check.setAttribute('data-errors', String(window.detsegErrors.length));
    var external = performance.getEntriesByType('resource').filter(function (r) { return !/^(data|file|blob|about):/.test(r.name); });
    check.setAttribute('data-external', String(external.length));
    var overlaps = textOverlaps();
    check.setAttribute('data-overlaps', String(overlaps.length));
    overlaps.forEach(function (o) { window.detsegErrors.push('overlap: ' + o); });
    var imgs = document.querySelectorAll('main img');
    var loaded = 0;
    imgs.forEach(function (i) { if (i.complete && i.naturalWidth > 0) loaded++; else window.detsegErrors.push('image not loaded: ' + (i.getAttribute('src') || '').slice(0, 80)); });
    check.setAttribute('data-images', loaded + '/' + imgs.length);
    external.forEach(function (r) { window.detsegErrors.push('request: ' + r.name); });
    check.textContent = window.detsegErrors.join('\n');
  }, 1000);
});
</script>
</body>
</html>
""";
    }

    static string Output(InteractiveDocumentOutputElement output) => output switch
    {
        TextElement t => $"<pre class=\"out {(t.Name == "stderr" ? "stderr" : "stdout")}\">{WebUtility.HtmlEncode(t.Text)}</pre>",
        ErrorElement e => $"<pre class=\"out error\">{WebUtility.HtmlEncode(e.ErrorName + ": " + e.ErrorValue)}{(e.StackTrace.Length > 0 ? "\n" + WebUtility.HtmlEncode(string.Join("\n", e.StackTrace)) : "")}</pre>",
        DisplayElement d => Rich(d.Data),
        ReturnValueElement r => Rich(r.Data),
        _ => "",
    };

    // The richest form a browser shows: HTML, then images, then markdown, then text.
    static string Rich(IDictionary<string, object> data)
    {
        if (data.TryGetValue("text/html", out var html)) return $"<div class=\"out html\">{html}</div>";
        foreach (string mime in new[] { "image/png", "image/jpeg", "image/svg+xml" })
            if (data.TryGetValue(mime, out var image))
                return mime == "image/svg+xml"
                    ? $"<div class=\"out\">{image}</div>"
                    : $"<div class=\"out\"><img src=\"data:{mime};base64,{image}\"></div>";
        if (data.TryGetValue("text/markdown", out var md)) return $"<div class=\"out md\">{Markdig.Markdown.ToHtml(md.ToString() ?? "", Markdown)}</div>";
        if (data.TryGetValue("text/plain", out var text)) return $"<pre class=\"out\">{WebUtility.HtmlEncode(text.ToString())}</pre>";
        return "";
    }

    const string Css = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1240px; margin: 0 auto; padding: 1.5em; color: #1f2328; line-height: 1.5; }
header { border-bottom: 1px solid #d0d7de; margin-bottom: 1.5em; } header p { color: #57606a; }
.cell { margin: 1em 0; }
.cell.code { border-left: 3px solid #d0d7de; padding-left: 0.8em; }
.cell.failed { border-left-color: #cf222e; } .cell.skipped { opacity: 0.55; }
.meta { font-size: 0.8em; color: #57606a; }
pre { font-family: ui-monospace, "Cascadia Code", Menlo, Consolas, monospace; font-size: 0.85em; padding: 0.6em 0.8em; border-radius: 6px; overflow-x: auto; margin: 0.3em 0; }
pre.src { background: #f6f8fa; border: 1px solid #d0d7de; }
pre.out { background: #fff; border: 1px dashed #d0d7de; white-space: pre-wrap; }
pre.stderr { color: #9a6700; } pre.error { color: #cf222e; border-color: #cf222e; }
.out.html { overflow-x: auto; margin: 0.3em 0; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #d0d7de; padding: 0.25em 0.6em; } th { background: #f6f8fa; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.9em; }
img { max-width: 100%; }
""";
}

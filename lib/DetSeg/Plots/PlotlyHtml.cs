using System.Net;

namespace DetSeg.Plots;

/// <summary>
/// The HTML around a figure: a fragment that loads plotly.js at most once per page, and self-contained pages
/// with the plotly.js that Plotly.NET embeds (no network needed).
/// </summary>
public static class PlotlyHtml
{
    /// <summary>The CSS class of every chart div DetSeg writes (reports and CI count them).</summary>
    public const string DivClass = "detseg-plot";

    /// <summary>The plotly.js version Plotly.NET carries (2.28.0 for Plotly.NET 6.0.0).</summary>
    public static string PlotlyJsVersion => PlotlyContext.Bridge.PlotlyJsVersion();

    /// <summary>The minified plotly.js embedded in Plotly.NET (~3.6 MB), for inlining once per page.</summary>
    public static string PlotlyJs() => PlotlyContext.Bridge.PlotlyJs();

    /// <summary>
    /// A div plus a script that draws <paramref name="figureJson"/>: with <c>window.Plotly</c> when the page
    /// has it (reports inline it in the head), else through require.js (Jupyter, as Plotly.NET.Interactive
    /// does), else through one shared script tag (VS Code), so plotly.js loads once per page.
    /// </summary>
    public static string Fragment(string figureJson, int width, int height)
    {
        string id = "detseg-plot-" + Guid.NewGuid().ToString("N");
        // "</" inside a JSON string would end the script element early; "<\/" means the same to JavaScript.
        string fig = figureJson.Replace("</", "<\\/", StringComparison.Ordinal);
        string cdn = $"https://cdn.plot.ly/plotly-{PlotlyJsVersion}.min";
        return $$$"""
<div id="{{{id}}}" class="{{{DivClass}}}" style="width:{{{width}}}px;max-width:100%;height:{{{height}}}px;"></div>
<script type="text/javascript">
(function () {
  var fig = {{{fig}}};
  // Fill the div (its width is the figure's, capped at the page's): narrower outputs shrink the chart.
  delete fig.layout.width;
  fig.layout.autosize = true;
  var draw = function () { window.Plotly.newPlot('{{{id}}}', fig.data, fig.layout, {responsive: true}); };
  if (window.Plotly) { draw(); return; }
  if (typeof window.requirejs === 'function') {
    window.requirejs.config({paths: {plotly: '{{{cdn}}}'}});
    window.requirejs(['plotly'], function (P) { window.Plotly = window.Plotly || P; draw(); });
    return;
  }
  var tag = document.getElementById('detseg-plotly-js');
  if (!tag) {
    tag = document.createElement('script');
    tag.id = 'detseg-plotly-js';
    tag.src = '{{{cdn}}}.js';
    document.head.appendChild(tag);
  }
  tag.addEventListener('load', draw);
})();
</script>
""";
    }

    /// <summary>A complete page with plotly.js inlined in the head and <paramref name="bodyHtml"/> as body.</summary>
    public static string Page(string title, string bodyHtml) => $$"""
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{WebUtility.HtmlEncode(title)}}</title>
<script type="text/javascript">{{PlotlyJs()}}</script>
</head>
<body style="font-family: system-ui, sans-serif; margin: 1.5em;">
{{bodyHtml}}
</body>
</html>
""";
}

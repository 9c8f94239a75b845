using System.Runtime.Loader;
using System.Text.Json.Nodes;
using DetSeg.Plots;
using Microsoft.AspNetCore.Html;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using static TorchSharp.torch;

namespace DetSeg.Tests.Plots;

// Checks the figure JSON that Plotly.NET writes (traces, shapes, axis ranges), not pixels.
public class ChartsTests
{
    static JsonObject Json(Figure f) => (JsonObject)JsonNode.Parse(f.ToJson())!;
    static JsonArray Traces(Figure f) => (JsonArray)Json(f)["data"]!;
    static JsonObject Layout(Figure f) => (JsonObject)Json(f)["layout"]!;
    static double[] Doubles(JsonNode? n) => ((JsonArray)n!).Select(v => v!.GetValue<double>()).ToArray();

    [Fact]
    public void Line_WritesOneScatterPerSeriesAndADashedMarker()
    {
        var fig = Charts.Line([new Series("train", [1.0, 0.6, 0.4, 0.35]), new Series("val", [1.1, 0.8, 0.7, 0.75], [1, 2, 3, 4])],
                              title: "loss", xTitle: "epoch", markerX: 3, markerLabel: "best", yRange: (0, 1.2));
        var traces = Traces(fig);
        Assert.Equal(2, traces.Count);
        Assert.All(traces, t => Assert.Equal("scatter", t!["type"]!.GetValue<string>()));
        Assert.Equal(["train", "val"], traces.Select(t => t!["name"]!.GetValue<string>()));
        Assert.Equal([0.0, 1, 2, 3], Doubles(traces[0]!["x"]));
        Assert.Equal([1.0, 2, 3, 4], Doubles(traces[1]!["x"]));
        Assert.NotEqual(traces[0]!["line"]!["color"]!.GetValue<string>(), traces[1]!["line"]!["color"]!.GetValue<string>());

        var layout = Layout(fig);
        var shape = Assert.Single((JsonArray)layout["shapes"]!)!;
        Assert.Equal("line", shape["type"]!.GetValue<string>());
        Assert.Equal(3.0, shape["x0"]!.GetValue<double>());
        Assert.Equal(3.0, shape["x1"]!.GetValue<double>());
        Assert.Equal("y domain", shape["yref"]!.GetValue<string>());
        Assert.Equal("dash", shape["line"]!["dash"]!.GetValue<string>());
        Assert.Equal("best", layout["annotations"]![0]!["text"]!.GetValue<string>());
        Assert.Equal([0.0, 1.2], Doubles(layout["yaxis"]!["range"]));
        Assert.Equal("epoch", layout["xaxis"]!["title"]!["text"]!.GetValue<string>());
        Assert.Equal("loss", layout["title"]!["text"]!.GetValue<string>());
    }

    [Fact]
    public void Line_RejectsSeriesWhoseXAndYDiffer()
    {
        var e = Assert.Throws<ArgumentException>(() => Charts.Line([new Series("acc", [0.1, 0.2], [0, 1, 2])]));
        Assert.Contains("'acc'", e.Message);
        Assert.Throws<ArgumentException>(() => Charts.Line([]));
    }

    [Fact]
    public void LineGrid_PutsEachPanelOnItsOwnAxesWithSharedColoursAndOneLegendEntryPerName()
    {
        var fig = Charts.LineGrid([
            new Panel("loss", [new Series("train", [3.0, 2, 1]), new Series("val", [3.5, 2.5, 2])]),
            new Panel("iou", [new Series("train", [0.1, 0.3, 0.5]), new Series("val", [0.1, 0.2, 0.4])]),
            new Panel("f1", [new Series("val", [0.2, 0.3, 0.35])]),
        ], columns: 2, markerX: 1);
        var traces = Traces(fig);
        Assert.Equal(5, traces.Count);
        Assert.Equal(["x", "x", "x2", "x2", "x3"], traces.Select(t => t!["xaxis"]!.GetValue<string>()));
        Assert.Equal(["y", "y", "y2", "y2", "y3"], traces.Select(t => t!["yaxis"]!.GetValue<string>()));
        Assert.Equal([true, true, false, false, false], traces.Select(t => t!["showlegend"]!.GetValue<bool>()));
        Assert.Equal(traces[0]!["line"]!["color"]!.GetValue<string>(), traces[2]!["line"]!["color"]!.GetValue<string>());
        Assert.Equal(traces[1]!["line"]!["color"]!.GetValue<string>(), traces[4]!["line"]!["color"]!.GetValue<string>());

        var layout = Layout(fig);
        double[] d1 = Doubles(layout["xaxis"]!["domain"]), d2 = Doubles(layout["xaxis2"]!["domain"]);
        Assert.True(d1[1] < d2[0], "panels in one row must not overlap");
        double[] y1 = Doubles(layout["yaxis"]!["domain"]), y3 = Doubles(layout["yaxis3"]!["domain"]);
        Assert.True(y3[1] < y1[0], "the third panel goes to the second row");
        Assert.Equal("y2", layout["xaxis2"]!["anchor"]!.GetValue<string>());
        var shapes = (JsonArray)layout["shapes"]!;
        Assert.Equal(["x", "x2", "x3"], shapes.Select(s => s!["xref"]!.GetValue<string>()));
        Assert.Equal(["y domain", "y2 domain", "y3 domain"], shapes.Select(s => s!["yref"]!.GetValue<string>()));
        var titles = ((JsonArray)layout["annotations"]!).Select(a => a!["text"]!.GetValue<string>()).ToList();
        Assert.Equal(["loss", "iou", "f1"], titles);
    }

    [Fact]
    public void Heatmap_OfTheCourseConfusionMatrix_HasCellTextAndRowZeroOnTop()
    {
        // The course's worked 3x3 example (seed, "Evaluation Metrics").
        using var cm = tensor(new long[] { 42, 8, 0, 6, 30, 4, 1, 2, 17 }).reshape(3, 3);
        var fig = Charts.Heatmap(cm, ["cat", "dog", "bird"], ["cat", "dog", "bird"], xTitle: "predicted", yTitle: "actual", textFormat: "0");
        var trace = Assert.Single(Traces(fig))!;
        Assert.Equal("heatmap", trace["type"]!.GetValue<string>());
        Assert.Equal([6.0, 30, 4], Doubles(trace["z"]![1]));
        Assert.Equal("42", trace["text"]![0]![0]!.GetValue<string>());
        Assert.Equal("17", trace["text"]![2]![2]!.GetValue<string>());
        Assert.Equal("%{text}", trace["texttemplate"]!.GetValue<string>());
        Assert.Equal("reversed", Layout(fig)["yaxis"]!["autorange"]!.GetValue<string>());
        Assert.Equal("predicted", Layout(fig)["xaxis"]!["title"]!["text"]!.GetValue<string>());
    }

    [Fact]
    public void Heatmap_RejectsNon2DTensorsAndWrongLabelCounts()
    {
        using var z = zeros(2, 3, 4);
        var e = Assert.Throws<ArgumentException>(() => Charts.Heatmap(z));
        Assert.Contains("[2, 3, 4]", e.Message);
        using var z2 = zeros(2, 3);
        Assert.Throws<ArgumentException>(() => Charts.Heatmap(z2, xLabels: ["a", "b"]));
    }

    [Fact]
    public void Bar_GroupsOneTracePerSeriesWithValueLabels()
    {
        var fig = Charts.Bar(["background", "person"], [new Series("recall", [0.9, 0.75]), new Series("iou", [0.85, 0.6])], yRange: (0, 1));
        var traces = Traces(fig);
        Assert.Equal(2, traces.Count);
        Assert.All(traces, t => Assert.Equal("bar", t!["type"]!.GetValue<string>()));
        Assert.Equal("0.75", traces[0]!["text"]![1]!.GetValue<string>());
        Assert.Equal("group", Layout(fig)["barmode"]!.GetValue<string>());
        Assert.Equal([0.0, 1], Doubles(Layout(fig)["yaxis"]!["range"]));
        Assert.Throws<ArgumentException>(() => Charts.Bar(["a", "b", "c"], [new Series("x", [1.0])]));
    }

    [Fact]
    public void Image_EmbedsThePixelsAsPngAndDrawsBoxesOnPixelEdges()
    {
        // A 2x3 uint8 image: red at (row 0, col 0), the rest black.
        using var img = zeros(new long[] { 3, 2, 3 }, dtype: uint8);
        img[0, 0, 0] = tensor((byte)255);
        var boxes = new[] { new Box(0, 0, 2, 1, "person 0.9"), new Box(1, 1, 3, 2) };
        var fig = Charts.Image(img, boxes);
        var trace = Assert.Single(Traces(fig))!;
        Assert.Equal("image", trace["type"]!.GetValue<string>());
        using (var png = DecodePng(trace["source"]!.GetValue<string>()))
        {
            Assert.Equal((3, 2), (png.Width, png.Height));
            Assert.Equal(new Rgba32(255, 0, 0, 255), png[0, 0]);
            Assert.Equal(new Rgba32(0, 0, 0, 255), png[1, 0]);
        }
        var layout = Layout(fig);
        Assert.Equal([-0.5, 2.5], Doubles(layout["xaxis"]!["range"]));
        Assert.Equal([1.5, -0.5], Doubles(layout["yaxis"]!["range"]));
        var shapes = (JsonArray)layout["shapes"]!;
        Assert.Equal(2, shapes.Count);
        Assert.Equal([-0.5, -0.5, 1.5, 0.5], new[] { "x0", "y0", "x1", "y1" }.Select(k => shapes[0]![k]!.GetValue<double>()));
        Assert.Equal("rect", shapes[1]!["type"]!.GetValue<string>());
        Assert.Equal("person 0.9", Assert.Single((JsonArray)layout["annotations"]!)!["text"]!.GetValue<string>());
    }

    [Fact]
    public void Image_OfFloatsClampsToUnitRangeAndRejectsNonImageShapes()
    {
        using var img = tensor(new float[] { -1f, 0.5f, 2f, 1f }).reshape(1, 2, 2);
        var trace = Traces(Charts.Image(img))[0]!;
        using var png = DecodePng(trace["source"]!.GetValue<string>());
        Assert.Equal(new Rgba32(0, 0, 0, 255), png[0, 0]);
        Assert.Equal(new Rgba32(128, 128, 128, 255), png[1, 0]);
        Assert.Equal(new Rgba32(255, 255, 255, 255), png[0, 1]);
        using var bad = zeros(4, 5, 5);
        Assert.Contains("[4, 5, 5]", Assert.Throws<ArgumentException>(() => Charts.Image(bad)).Message);
    }

    [Fact]
    public void BoxFromTensor_ReadsXyxyRowsAndRejectsOtherShapes()
    {
        using var xyxy = tensor(new float[] { 1, 2, 3, 4, 5, 6, 7, 8 }).reshape(2, 4);
        var boxes = Box.FromTensor(xyxy, ["a", "b"]);
        Assert.Equal(new Box(5, 6, 7, 8, "b"), boxes[1]);
        using var bad = zeros(2, 5);
        Assert.Throws<ArgumentException>(() => Box.FromTensor(bad));
        Assert.Throws<ArgumentException>(() => Box.FromTensor(xyxy, ["only one"]));
        // an image without boxes, and a column-sliced (non-contiguous) view
        Assert.Empty(Box.FromTensor(zeros(0, 4), []));
        using var wide = tensor(new float[] { 9, 1, 2, 3, 4, 9, 5, 6, 7, 8 }).reshape(2, 5);
        Assert.Equal(new Box(5, 6, 7, 8, null), Box.FromTensor(wide[.., 1..])[1]);
    }

    [Fact]
    public void Mask_OverlaysClassColoursWithOpacityAndLeavesBackgroundAndIgnoredClear()
    {
        using var img = ones(3, 2, 2);
        using var mask = tensor(new long[] { 0, 1, 2, -1 }).reshape(2, 2);
        var fig = Charts.Mask(img, mask, opacity: 0.5, classNames: ["background", "person", "bike"]);
        var traces = Traces(fig);
        Assert.Equal(["image", "image", "scatter", "scatter"], traces.Select(t => t!["type"]!.GetValue<string>()));
        using var overlay = DecodePng(traces[1]!["source"]!.GetValue<string>());
        Assert.Equal(0, overlay[0, 0].A);
        var (r, g, b) = Palette.Rgb(0);
        Assert.Equal(new Rgba32(r, g, b, 128), overlay[1, 0]);
        Assert.Equal(Palette.Rgb(1), (overlay[0, 1].R, overlay[0, 1].G, overlay[0, 1].B));
        Assert.Equal(0, overlay[1, 1].A);
        Assert.Equal("person", traces[2]!["name"]!.GetValue<string>());

        using var wrong = zeros(new long[] { 3, 2 }, dtype: int64);
        var e = Assert.Throws<ArgumentException>(() => Charts.Mask(img, wrong));
        Assert.Contains("[3, 2]", e.Message);
        Assert.Contains("[3, 2, 2]", e.Message);
        using var logits = zeros(2, 2);
        Assert.Throws<ArgumentException>(() => Charts.Mask(img, logits));
    }

    [Fact]
    public void Grid_OfImages_KeepsSquarePixelsPerPanelAndRemapsBoxes()
    {
        using var img = zeros(3, 4, 4);
        var fig = Charts.Grid([Charts.Image(img, title: "a"), Charts.Image(img, [new Box(0, 0, 1, 1)], title: "b")], columns: 2);
        var layout = Layout(fig);
        Assert.Equal("x2", layout["yaxis2"]!["scaleanchor"]!.GetValue<string>());
        Assert.Equal([3.5, -0.5], Doubles(layout["yaxis2"]!["range"]));
        Assert.Equal("x2", layout["shapes"]![0]!["xref"]!.GetValue<string>());
        Assert.Throws<ArgumentException>(() => Charts.Grid([fig]));
    }

    [Fact]
    public void Figure_DisplaysAsHtmlThroughAnInternalSubclassAndLoadsPlotlyOncePerPage()
    {
        var fig = Charts.Line([new Series("y", [1.0, 2.0])], title: "</script> title");
        Assert.False(typeof(IHtmlContent).IsAssignableFrom(typeof(Figure)), "the public type must stay free of IHtmlContent (CS1701 in the stock kernel)");
        var html = Assert.IsAssignableFrom<IHtmlContent>(fig);
        using var writer = new StringWriter();
        html.WriteTo(writer, System.Text.Encodings.Web.HtmlEncoder.Default);
        string fragment = writer.ToString();
        Assert.Contains($"class=\"{PlotlyHtml.DivClass}\"", fragment);
        Assert.Contains("window.Plotly", fragment);
        Assert.Contains("requirejs", fragment);
        Assert.Contains("detseg-plotly-js", fragment);
        Assert.DoesNotContain("</script> title", fragment);
        Assert.Equal(1, CountOf(fragment, "<script"));

        string page = fig.ToHtmlPage();
        Assert.Contains("plotly.js v2.28.0", page);
        Assert.True(page.Length > 3_000_000, "the page inlines plotly.js");
    }

    [Fact]
    public void PlotlyNet_LoadsInItsOwnContext_NotBesideTheHostsFSharpCore()
    {
        _ = Charts.Bar(["a"], [new Series("s", [1.0])]).ToJson();
        var plotly = AssemblyLoadContext.All.SelectMany(c => c.Assemblies.Select(a => (c, a))).Single(x => x.a.GetName().Name == "Plotly.NET");
        Assert.NotSame(AssemblyLoadContext.Default, plotly.c);
        Assert.DoesNotContain(AssemblyLoadContext.Default.Assemblies, a => a.GetName().Name is "FSharp.Core" or "Plotly.NET");
        var fsharp = plotly.c.Assemblies.Single(a => a.GetName().Name == "FSharp.Core").GetName().Version!;
        Assert.Equal((10, 1), (fsharp.Major, fsharp.Minor));
    }

    [Fact]
    public void SaveHtml_WritesTheWholePageAndLeavesNoTempFile()
    {
        string dir = TestPaths.NewTempDir();
        string path = Path.Combine(dir, "sub", "fig.html");
        Charts.Line([new Series("y", [1.0, 2.0])]).SaveHtml(path);
        Assert.True(new FileInfo(path).Length > 3_000_000);
        Assert.Equal([path], Directory.GetFiles(Path.Combine(dir, "sub")));
    }

    static Image<Rgba32> DecodePng(string dataUri)
    {
        const string prefix = "data:image/png;base64,";
        Assert.StartsWith(prefix, dataUri);
        return SixLabors.ImageSharp.Image.Load<Rgba32>(Convert.FromBase64String(dataUri[prefix.Length..]));
    }

    static int CountOf(string s, string what) => (s.Length - s.Replace(what, "").Length) / what.Length;
}

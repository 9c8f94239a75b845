using System.Text.Json.Nodes;
using DetSeg.Plots;
using static TorchSharp.torch;

namespace DetSeg.Tests.Plots;

// Text that must not collide, checked on the layout in pixels (CI also measures the drawn boxes in Chromium).
public class LayoutTests
{
    static JsonObject Layout(Figure f) => (JsonObject)JsonNode.Parse(f.ToJson())!["layout"]!;
    static double[] Doubles(JsonNode? n) => ((JsonArray)n!).Select(v => v!.GetValue<double>()).ToArray();
    static double Int(JsonNode? n) => n!.GetValue<double>(); // plotly JSON numbers

    [Fact]
    public void LineGrid_RowsLeaveRoomForTickLabelsAxisTitleAndTheNextPanelsTitle()
    {
        var fig = Charts.LineGrid([
            new Panel("loss", [new Series("train", [3.0, 2, 1])]), new Panel("iou", [new Series("train", [0.1, 0.3, 0.5])]),
            new Panel("f1", [new Series("train", [0.2, 0.3, 0.35])]),
        ], columns: 2, title: "curves", xTitle: "epoch", panelWidth: 300, panelHeight: 200);
        var layout = Layout(fig);
        var margin = layout["margin"]!;
        double plotH = Int(layout["height"]) - Int(margin["t"]) - Int(margin["b"]);
        double[] top = Doubles(layout["yaxis"]!["domain"]), bottom = Doubles(layout["yaxis3"]!["domain"]);
        // Between rows: tick labels (~20 px) + the x title (~20 px) + the next panel title (~20 px): at least 60 px.
        Assert.True((top[0] - bottom[1]) * plotH >= 60, $"gap between rows {(top[0] - bottom[1]) * plotH:0} px");
        // Each panel's plot area is the size asked for.
        Assert.Equal(200, (top[1] - top[0]) * plotH, 3);
        // The figure title sits below the mode bar (top ~30 px) and above the first row's panel titles.
        var title = layout["title"]!;
        Assert.Equal("container", title["yref"]!.GetValue<string>());
        double titleTop = (1 - title["y"]!.GetValue<double>()) * Int(layout["height"]);
        Assert.InRange(titleTop, 30, 40);
        Assert.True(Int(margin["t"]) >= titleTop + 20 + 20, "room for the title and the panel titles above the plots");
    }

    [Fact]
    public void ImageGrid_PanelsHaveTheImagesAspect_SoNoBlankBandsBetweenRows()
    {
        using var img = zeros(3, 30, 60); // twice as wide as tall
        var fig = Charts.Grid([Charts.Image(img, title: "a", width: 260), Charts.Image(img, title: "b", width: 260),
                               Charts.Image(img, title: "c", width: 260)], columns: 2);
        var layout = Layout(fig);
        var margin = layout["margin"]!;
        double plotW = Int(layout["width"]) - Int(margin["l"]) - Int(margin["r"]);
        double plotH = Int(layout["height"]) - Int(margin["t"]) - Int(margin["b"]);
        double[] x = Doubles(layout["xaxis"]!["domain"]), y = Doubles(layout["yaxis"]!["domain"]);
        double w = (x[1] - x[0]) * plotW, h = (y[1] - y[0]) * plotH;
        Assert.Equal(220, w, 3);       // 260 px figure less its 20 + 20 px margins
        Assert.Equal(w / 2, h, 3);     // the image's aspect: square pixels fill the panel exactly
        double[] y3 = Doubles(layout["yaxis3"]!["domain"]);
        double gap = (y[0] - y3[1]) * plotH;
        Assert.InRange(gap, 20, 50);   // the next row's panel title, and no more
    }

    [Fact]
    public void Titles_SitBelowTheModeBar_InEveryBuilder()
    {
        foreach (var fig in new[] {
            Charts.Line([new Series("a", [1.0, 2])], title: "a long title that would run under the mode bar"),
            Charts.Heatmap(ones(2, 2), title: "heat"),
            Charts.Image(zeros(3, 8, 8), title: "image") })
        {
            var layout = Layout(fig);
            double titleTop = (1 - layout["title"]!["y"]!.GetValue<double>()) * Int(layout["height"]);
            Assert.InRange(titleTop, 30, 40);
            Assert.True(Int(layout["margin"]!["t"]) >= titleTop + 24);
        }
    }
}

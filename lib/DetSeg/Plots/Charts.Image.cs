using System.Text.Json.Nodes;
using TorchSharp;

namespace DetSeg.Plots;

/// <summary>A rectangle on an image, in pixel coordinates (x to the right, y down, edges as in torchvision's xyxy).</summary>
/// <param name="X1">Left edge.</param>
/// <param name="Y1">Top edge.</param>
/// <param name="X2">Right edge.</param>
/// <param name="Y2">Bottom edge.</param>
/// <param name="Label">Text drawn at the top-left corner (e.g. <c>"3 0.87"</c>), or null.</param>
/// <param name="Color">A CSS colour, or null to colour by label.</param>
public sealed record Box(double X1, double Y1, double X2, double Y2, string? Label = null, string? Color = null)
{
    /// <summary>
    /// Boxes from a tensor [N x 4] of pixel xyxy corners (copied to the host once), with optional labels.
    /// </summary>
    /// <param name="xyxy">The corners [N x 4], any device and float type.</param>
    /// <param name="labels">One label per box, or null.</param>
    /// <param name="color">One colour for all boxes, or null to colour by label.</param>
    /// <exception cref="ArgumentException">The tensor is not [N x 4], or the label count differs from N.</exception>
    public static IReadOnlyList<Box> FromTensor(torch.Tensor xyxy, IReadOnlyList<string>? labels = null, string? color = null)
    {
        ArgumentNullException.ThrowIfNull(xyxy);
        if (xyxy.ndim != 2 || xyxy.shape[1] != 4)
            throw new ArgumentException($"Boxes must be a tensor [N x 4] of x1, y1, x2, y2; got shape [{string.Join(", ", xyxy.shape)}].", nameof(xyxy));
        int n = (int)xyxy.shape[0];
        if (labels is not null && labels.Count != n)
            throw new ArgumentException($"{labels.Count} labels for {n} boxes.", nameof(labels));
        if (n == 0) return [];                                   // data<T>() of an empty tensor throws in TorchSharp
        using var host = xyxy.detach().to(torch.float64).cpu().contiguous();
        double[] v = host.data<double>().ToArray();
        return Enumerable.Range(0, n).Select(i => new Box(v[4 * i], v[4 * i + 1], v[4 * i + 2], v[4 * i + 3], labels?[i], color)).ToList();
    }
}

public static partial class Charts
{
    /// <summary>
    /// An image (tensor [3 x H x W] in [0, 1] or uint8, [1 x H x W] or [H x W] as grey) with rectangles and
    /// their labels drawn on top. Axes are in pixels, y down, 1:1 aspect.
    /// </summary>
    /// <param name="image">The image tensor, any device.</param>
    /// <param name="boxes">Rectangles in pixel coordinates, or null.</param>
    /// <param name="title">Chart title.</param>
    /// <param name="width">Width in pixels (the height follows the image's aspect).</param>
    /// <exception cref="ArgumentException">The tensor is not an image shape.</exception>
    public static Figure Image(torch.Tensor image, IEnumerable<Box>? boxes = null, string title = "", int width = 420)
    {
        ArgumentNullException.ThrowIfNull(image);
        var (h, w) = TensorImage.Size(image, nameof(image));
        var layout = ImageLayout(title, h, w, width);
        var data = new JsonArray(ImageTrace(TensorImage.RgbPng(image, nameof(image)), "image"));
        var labelColors = new Dictionary<string, int>();
        foreach (var box in boxes ?? [])
        {
            string color = box.Color ?? Palette.Color(LabelIndex(labelColors, box.Label));
            // Pixel i covers [i - 0.5, i + 0.5] on the plot (image traces centre pixels on integers),
            // so an edge at pixel coordinate x sits at x - 0.5.
            Append(layout, "shapes", new JsonObject
            {
                ["type"] = "rect",
                ["xref"] = "x",
                ["yref"] = "y",
                ["x0"] = box.X1 - 0.5,
                ["y0"] = box.Y1 - 0.5,
                ["x1"] = box.X2 - 0.5,
                ["y1"] = box.Y2 - 0.5,
                ["line"] = new JsonObject { ["color"] = color, ["width"] = 2 },
            });
            if (!string.IsNullOrEmpty(box.Label))
                Append(layout, "annotations", new JsonObject
                {
                    ["xref"] = "x",
                    ["yref"] = "y",
                    ["x"] = box.X1 - 0.5,
                    ["y"] = box.Y1 - 0.5,
                    ["text"] = box.Label,
                    ["showarrow"] = false,
                    ["xanchor"] = "left",
                    ["yanchor"] = "bottom",
                    ["bgcolor"] = color,
                    ["font"] = new JsonObject { ["color"] = "white", ["size"] = 11 },
                    ["borderpad"] = 1,
                });
        }
        return Figure.Create(data, layout);
    }

    static int LabelIndex(Dictionary<string, int> seen, string? label)
    {
        string key = label ?? "";
        if (!seen.TryGetValue(key, out int i)) seen[key] = i = seen.Count;
        return i;
    }

    static JsonObject ImageTrace(string pngUri, string name) => new()
    {
        ["type"] = "image",
        ["source"] = pngUri,
        ["name"] = name,
        ["hovertemplate"] = "x %{x}, y %{y}<extra></extra>",
    };

    // Pixel axes: x in [-0.5, W - 0.5], y from H - 0.5 at the bottom to -0.5 at the top, square pixels.
    static JsonObject ImageLayout(string title, int h, int w, int width)
    {
        int plotWidth = width - 40;
        int top = string.IsNullOrEmpty(title) ? 20 : TitledTop;
        int height = (int)Math.Round(plotWidth * (double)h / w) + top + 20;
        var layout = BaseLayout(title, width, height, legend: false);
        layout["margin"] = new JsonObject { ["l"] = 20, ["r"] = 20, ["t"] = top, ["b"] = 20 };
        layout["xaxis"] = new JsonObject { ["range"] = Range(-0.5, w - 0.5), ["showgrid"] = false, ["zeroline"] = false, ["showticklabels"] = false };
        layout["yaxis"] = new JsonObject { ["range"] = Range(h - 0.5, -0.5), ["showgrid"] = false, ["zeroline"] = false, ["showticklabels"] = false, ["scaleanchor"] = "x" };
        return layout;
    }
}

using System.Text.Json.Nodes;
using TorchSharp;

namespace DetSeg.Plots;

public static partial class Charts
{
    /// <summary>
    /// An image with a semi-transparent segmentation mask on top: each class id &gt; 0 gets its own colour,
    /// class 0 (background) and negative ids (ignored pixels) stay clear.
    /// </summary>
    /// <param name="image">The image tensor [3 x H x W] in [0, 1] or uint8 ([1 x H x W] or [H x W] as grey), any device.</param>
    /// <param name="mask">Class ids [H x W] (or [1 x H x W]), integer, any device.</param>
    /// <param name="opacity">Mask opacity in [0, 1].</param>
    /// <param name="classNames">Names for classes 0..C-1 (0 is background): adds a legend of the colours.</param>
    /// <param name="title">Chart title.</param>
    /// <param name="width">Width in pixels (the height follows the image's aspect).</param>
    /// <exception cref="ArgumentException">The shapes are not an image and a mask of the same height and width.</exception>
    public static Figure Mask(torch.Tensor image, torch.Tensor mask, double opacity = 0.5, IReadOnlyList<string>? classNames = null,
                              string title = "", int width = 420)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(mask);
        var (h, w) = TensorImage.Size(image, nameof(image));
        var m = mask.ndim == 3 && mask.shape[0] == 1 ? mask.squeeze(0) : mask;
        if (m.ndim != 2 || m.shape[0] != h || m.shape[1] != w)
            throw new ArgumentException(
                $"mask must be [H x W] = [{h} x {w}] like image [{string.Join(", ", image.shape)}]; got shape [{string.Join(", ", mask.shape)}].", nameof(mask));
        if (m.is_floating_point())
            throw new ArgumentException($"mask must hold integer class ids, not {m.dtype} (take argmax over classes first).", nameof(mask));

        var layout = ImageLayout(title, h, w, width);
        var data = new JsonArray(
            ImageTrace(TensorImage.RgbPng(image, nameof(image)), "image"),
            ImageTrace(TensorImage.MaskPng(m, opacity), "mask"));
        if (classNames is { Count: > 1 })
        {
            // Legend only: one invisible point per foreground class in its mask colour.
            for (int c = 1; c < classNames.Count; c++)
                data.Add(new JsonObject
                {
                    ["type"] = "scatter",
                    ["mode"] = "markers",
                    ["name"] = classNames[c],
                    ["x"] = new JsonArray((JsonNode?)null),
                    ["y"] = new JsonArray((JsonNode?)null),
                    ["marker"] = new JsonObject { ["color"] = Palette.Color(c - 1), ["symbol"] = "square", ["size"] = 12 },
                });
            // Below the image, so the image keeps the figure's full width.
            layout["showlegend"] = true;
            layout["legend"] = new JsonObject { ["orientation"] = "h", ["x"] = 0, ["y"] = 0, ["yanchor"] = "top" };
            layout["margin"]!["b"] = 40;
            layout["height"] = layout["height"]!.GetValue<int>() + 30;
        }
        if (!ReferenceEquals(m, mask)) m.Dispose();
        return Figure.Create(data, layout);
    }
}

using System.Text.Json;
using DetSeg.Data.Formats;
using static TorchSharp.torch;

namespace DetSeg.Inference;

/// <summary>Writes predictions: overlay PNGs, class-mask PNGs and a COCO results JSON.</summary>
public static class PredictionWriter
{
    static readonly byte[][] Colors = [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230]];

    /// <summary>The image with the predicted boxes (2-pixel outlines, a colour per class) or foreground classes (half-tinted) drawn on it.</summary>
    public static void WriteOverlay(string path, Prediction p)
    {
        using var image = ImageFiles.ReadRgb(p.File);
        var pixels = image.permute(1, 2, 0).contiguous().data<byte>().ToArray();   // H x W x 3
        int W = p.Width, H = p.Height;
        if (p.Mask is not null)
        {
            var classes = p.Mask.to(ScalarType.Int64).data<long>().ToArray();
            for (int i = 0; i < classes.Length; i++)
                if (classes[i] > 0)
                {
                    var c = Colors[(classes[i] - 1) % Colors.Length];
                    for (int k = 0; k < 3; k++) pixels[3 * i + k] = (byte)((pixels[3 * i + k] + c[k]) / 2);
                }
        }
        if (p.Boxes is not null && p.Labels is not null)
        {
            var b = p.Boxes.data<float>().ToArray();
            var l = p.Labels.data<long>().ToArray();
            for (int n = 0; n < l.Length; n++)
            {
                var c = Colors[l[n] % Colors.Length];
                int x1 = Clamp(b[4 * n], W), y1 = Clamp(b[4 * n + 1], H), x2 = Clamp(b[4 * n + 2] - 1, W), y2 = Clamp(b[4 * n + 3] - 1, H);
                for (int t = 0; t < 2; t++)
                {
                    for (int x = x1; x <= x2; x++) { Set(x, Math.Min(y1 + t, H - 1)); Set(x, Math.Max(y2 - t, 0)); }
                    for (int y = y1; y <= y2; y++) { Set(Math.Min(x1 + t, W - 1), y); Set(Math.Max(x2 - t, 0), y); }
                }
                void Set(int x, int y) { int i = 3 * (y * W + x); pixels[i] = c[0]; pixels[i + 1] = c[1]; pixels[i + 2] = c[2]; }
            }
        }
        using var hwc = tensor(pixels, [H, W, 3], ScalarType.Byte);
        using var chw = hwc.permute(2, 0, 1);
        ImageFiles.WritePng(path, chw);
    }

    static int Clamp(float v, int n) => Math.Clamp((int)Math.Round(v), 0, n - 1);

    /// <summary>
    /// COCO results (a list of <c>{image_id, file_name, category_id, bbox [x, y, w, h], score}</c>): image ids count from 1 in
    /// prediction order, <c>category_id</c> is label + 1 (the ids <see cref="CocoWriter"/> gives classes).
    /// </summary>
    public static void WriteCocoResults(string path, IEnumerable<Prediction> predictions, IReadOnlyList<string>? classes = null)
    {
        var results = new List<object>();
        int imageId = 0;
        foreach (var p in predictions)
        {
            imageId++;
            if (p.Boxes is null || p.Scores is null || p.Labels is null) continue;
            var b = p.Boxes.data<float>().ToArray();
            var s = p.Scores.data<float>().ToArray();
            var l = p.Labels.data<long>().ToArray();
            for (int n = 0; n < l.Length; n++)
                results.Add(new
                {
                    image_id = imageId, file_name = Path.GetFileName(p.File), category_id = l[n] + 1,
                    category = classes is not null && l[n] < classes.Count ? classes[(int)l[n]] : null,
                    bbox = new[] { Math.Round(b[4 * n], 2), Math.Round(b[4 * n + 1], 2), Math.Round(b[4 * n + 2] - b[4 * n], 2), Math.Round(b[4 * n + 3] - b[4 * n + 1], 2) },
                    score = Math.Round(s[n], 5),
                });
        }
        var options = new JsonSerializerOptions { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };
        Interop.AtomicWrite.ToFile(path, f => JsonSerializer.Serialize(f, results, options));
    }
}

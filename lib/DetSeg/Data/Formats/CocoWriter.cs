using System.Text.Json;
using static TorchSharp.torch;

namespace DetSeg.Data.Formats;

/// <summary>Writes annotated images as a COCO instances dataset (PNG images plus one JSON), for other tools.</summary>
public static class CocoWriter
{
    /// <summary>
    /// Writes each item's image to <c><paramref name="imageFolder"/>/NAME.png</c> (names made unique and .png) and one
    /// instances JSON: categories 1..C in <paramref name="classes"/> order, <c>bbox</c> [x, y, w, h] from the item's boxes,
    /// and, when the item has an instance mask, each object's pixels as an uncompressed RLE (exact, unlike polygons).
    /// </summary>
    /// <returns>The number of images written.</returns>
    public static int Write(string annotationFile, string imageFolder, IEnumerable<AnnotatedImage> items, IReadOnlyList<string> classes, bool disposeItems = true)
    {
        var imagesJson = new List<object>();
        var annsJson = new List<object>();
        var used = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        long annId = 1; int imageId = 0;
        foreach (var item in items)
        {
            try
            {
                imageId++;
                string stem = Path.GetFileNameWithoutExtension(item.Name);
                string file = stem + ".png";
                for (int k = 2; !used.Add(file); k++) file = $"{stem}_{k}.png";
                ImageFiles.WritePng(Path.Combine(imageFolder, file), item.Image);
                imagesJson.Add(new { id = imageId, file_name = file, width = item.Width, height = item.Height });
                var boxes = item.Boxes.cpu().data<float>().ToArray();
                var labels = item.Labels.cpu().data<long>().ToArray();
                for (int i = 0; i < labels.Length; i++)
                {
                    if (labels[i] < 0 || labels[i] >= classes.Count)
                        throw new ArgumentException($"{item.Name}: object {i} has label {labels[i]}, outside the {classes.Count} classes.", nameof(items));
                    double x = boxes[4 * i], y = boxes[4 * i + 1], w = boxes[4 * i + 2] - x, h = boxes[4 * i + 3] - y;
                    object? segmentation = null;
                    double area = w * h;
                    if (item.InstanceMask is not null)
                    {
                        using var obj = item.InstanceMask.eq(i + 1);
                        area = obj.sum().item<long>();
                        segmentation = new { size = new[] { item.Height, item.Width }, counts = CocoMasks.EncodeRle(obj) };
                    }
                    annsJson.Add(new { id = annId++, image_id = imageId, category_id = labels[i] + 1, bbox = new[] { x, y, w, h }, area, iscrowd = 0, segmentation });
                }
            }
            finally { if (disposeItems) item.Dispose(); }
        }
        var doc = new
        {
            info = new { description = "written by DetSeg", version = "1.0" },
            images = imagesJson,
            annotations = annsJson,
            categories = classes.Select((c, i) => new { id = i + 1, name = c, supercategory = c }).ToArray(),
        };
        var options = new JsonSerializerOptions { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };
        Interop.AtomicWrite.ToFile(annotationFile, s => JsonSerializer.Serialize(s, doc, options));
        return imageId;
    }
}

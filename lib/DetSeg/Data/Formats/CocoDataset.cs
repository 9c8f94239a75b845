using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Data.Formats;

/// <summary>
/// A COCO instances file (<c>instances_*.json</c>: images, annotations, categories) with its image folder, as
/// torchvision's detection references read it. Boxes come from <c>bbox</c> [x, y, w, h]; masks from
/// <c>segmentation</c> (polygons, uncompressed or compressed RLE). Categories are sorted by id; a label is the
/// category's position in that order, so sparse COCO ids (1..90) become 0..79.
/// </summary>
/// <remarks>
/// Every annotation is checked when the file is opened; an error names the JSON file, the annotation id and the
/// image: a box outside its image or with no area, an unknown category or image id, a polygon with fewer than three
/// points, an RLE whose size differs from its image, and a missing image file.
/// Images with no annotations are kept (they have 0 boxes).
/// </remarks>
public sealed class CocoDataset : IAnnotatedDataset
{
    /// <summary>A COCO image entry.</summary>
    public sealed record ImageInfo(long Id, string FileName, int Width, int Height);

    /// <summary>A parsed annotation: box in pixels (x, y, w, h), category position, segmentation (null when absent).</summary>
    internal sealed record Annotation(long Id, long ImageId, int Label, double[] Bbox, double[][]? Polygons, long[]? Rle, bool IsCrowd);

    readonly ImageInfo[] images;
    readonly Dictionary<long, List<Annotation>> byImage;
    readonly long[] categoryIds;

    /// <summary>Opens and checks <paramref name="annotationFile"/>; images are read from <paramref name="imageFolder"/> on access.</summary>
    /// <param name="annotationFile">The instances JSON.</param>
    /// <param name="imageFolder">Folder holding each image's <c>file_name</c>; null: the JSON's folder.</param>
    /// <param name="withMasks">Decode segmentations into instance masks (false: boxes only, and faster).</param>
    /// <exception cref="InvalidDataException">A bad annotation; the message names the file, the annotation and the image.</exception>
    public CocoDataset(string annotationFile, string? imageFolder = null, bool withMasks = true)
    {
        if (!File.Exists(annotationFile)) throw new FileNotFoundException($"COCO annotation file not found: {annotationFile}", annotationFile);
        AnnotationFile = Path.GetFullPath(annotationFile);
        ImageFolder = Path.GetFullPath(imageFolder ?? Path.GetDirectoryName(AnnotationFile)!);
        WithMasks = withMasks;
        using var doc = ParseJson(AnnotationFile);
        var root = doc.RootElement;

        var cats = Array(root, "categories").Select(c => (Id: Long(c, "id", "category"), Name: Str(c, "name", "category"))).OrderBy(c => c.Id).ToArray();
        categoryIds = cats.Select(c => c.Id).ToArray();
        Classes = cats.Select(c => c.Name).ToArray();
        var labelOf = cats.Select((c, i) => (c.Id, i)).ToDictionary(c => c.Id, c => c.i);

        images = Array(root, "images").Select(i => new ImageInfo(Long(i, "id", "image"), Str(i, "file_name", "image"), (int)Long(i, "width", "image"), (int)Long(i, "height", "image"))).ToArray();
        var imageById = new Dictionary<long, ImageInfo>();
        foreach (var im in images)
        {
            if (!imageById.TryAdd(im.Id, im)) throw Bad($"image id {im.Id} appears twice");
            string file = Path.Combine(ImageFolder, im.FileName);
            if (!File.Exists(file)) throw Bad($"image id {im.Id}: image file {file} is missing");
        }

        byImage = images.ToDictionary(i => i.Id, _ => new List<Annotation>());
        foreach (var a in root.TryGetProperty("annotations", out var anns) ? anns.EnumerateArray() : Enumerable.Empty<JsonElement>())
        {
            long id = Long(a, "id", "annotation");
            long imageId = Long(a, "image_id", $"annotation {id}");
            if (!imageById.TryGetValue(imageId, out var image)) throw Bad($"annotation {id}: image_id {imageId} is not in images");
            string where = $"annotation {id} (image {image.FileName}, {image.Width} x {image.Height})";
            long cat = Long(a, "category_id", where);
            if (!labelOf.TryGetValue(cat, out int label)) throw Bad($"{where}: category_id {cat} is not in categories ({string.Join(", ", categoryIds)})");
            if (!a.TryGetProperty("bbox", out var bb) || bb.ValueKind != JsonValueKind.Array || bb.GetArrayLength() != 4)
                throw Bad($"{where}: bbox must be [x, y, width, height]");
            var box = bb.EnumerateArray().Select(e => e.GetDouble()).ToArray();
            const double slack = 0.5; // tools round to half pixels; anything further out is a wrong box
            if (box[2] <= 0 || box[3] <= 0 || box[0] < -slack || box[1] < -slack || box[0] + box[2] > image.Width + slack || box[1] + box[3] > image.Height + slack)
                throw Bad($"{where}: bbox [{string.Join(", ", box)}] is empty or outside the image");
            var (polys, rle) = ParseSegmentation(a, where, image);
            bool crowd = a.TryGetProperty("iscrowd", out var c) && c.ValueKind == JsonValueKind.Number && c.GetInt32() != 0;
            byImage[imageId].Add(new Annotation(id, imageId, label, box, polys, rle, crowd));
        }
    }

    /// <summary>The JSON file.</summary>
    public string AnnotationFile { get; }
    /// <summary>The image folder.</summary>
    public string ImageFolder { get; }
    /// <summary>Whether items carry instance masks.</summary>
    public bool WithMasks { get; }
    /// <inheritdoc/>
    public IReadOnlyList<string> Classes { get; }
    /// <summary>COCO category id of each label (label i is category <c>CategoryIds[i]</c>).</summary>
    public IReadOnlyList<long> CategoryIds => categoryIds;
    /// <summary>The image entries, in file order (item i is image i).</summary>
    public IReadOnlyList<ImageInfo> Images => images;
    /// <inheritdoc/>
    public int Count => images.Length;

    /// <inheritdoc/>
    public AnnotatedImage this[int index]
    {
        get
        {
            DatasetExtensions.CheckIndex(index, Count, "CocoDataset");
            var info = images[index];
            string file = Path.Combine(ImageFolder, info.FileName);
            var image = ImageFiles.ReadRgb(file);
            if (image.shape[1] != info.Height || image.shape[2] != info.Width)
            {
                var shape = image.shape; image.Dispose();
                throw Bad($"image id {info.Id}: {file} is {shape[2]} x {shape[1]} but the JSON says {info.Width} x {info.Height}");
            }
            var anns = byImage[info.Id];
            var boxes = anns.Count == 0 ? zeros(0, 4) : tensor(anns.SelectMany(a => new[] { a.Bbox[0], a.Bbox[1], a.Bbox[0] + a.Bbox[2], a.Bbox[1] + a.Bbox[3] }).Select(v => (float)v).ToArray(), [anns.Count, 4]);
            var labels = tensor(anns.Select(a => (long)a.Label).ToArray(), [anns.Count]);
            Tensor? mask = null;
            if (WithMasks)
            {
                using var scope = NewDisposeScope();
                var m = zeros(info.Height, info.Width, ScalarType.Int64);
                for (int i = 0; i < anns.Count; i++)
                {
                    var a = anns[i];
                    Tensor? obj = a.Rle is not null ? CocoMasks.DecodeRle(a.Rle, info.Height, info.Width)
                        : a.Polygons is not null ? CocoMasks.FillPolygons(a.Polygons, info.Height, info.Width) : null;
                    if (obj is not null) { using Scalar id = i + 1; m.masked_fill_(obj, id); } // later objects on top; held: DataLoader workers
                }
                mask = m.MoveToOuterDisposeScope();
            }
            return new AnnotatedImage(info.FileName, image, boxes, labels, mask);
        }
    }

    (double[][]?, long[]?) ParseSegmentation(JsonElement a, string where, ImageInfo image)
    {
        if (!a.TryGetProperty("segmentation", out var seg) || seg.ValueKind == JsonValueKind.Null) return (null, null);
        if (seg.ValueKind == JsonValueKind.Array)
        {
            if (seg.GetArrayLength() == 0) return (null, null);
            var polys = seg.EnumerateArray().Select(p => p.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
            foreach (var p in polys)
                if (p.Length < 6 || p.Length % 2 != 0)
                    throw Bad($"{where}: a polygon has {p.Length} coordinates; it needs at least three (x, y) points");
            return (polys, null);
        }
        if (seg.ValueKind == JsonValueKind.Object && seg.TryGetProperty("size", out var size) && seg.TryGetProperty("counts", out var counts))
        {
            var hw = size.EnumerateArray().Select(e => e.GetInt32()).ToArray();
            if (hw.Length != 2 || hw[0] != image.Height || hw[1] != image.Width)
                throw Bad($"{where}: RLE size [{string.Join(", ", hw)}] differs from the image's [height {image.Height}, width {image.Width}]");
            long[] runs;
            try
            {
                runs = counts.ValueKind == JsonValueKind.String ? CocoMasks.DecompressCounts(counts.GetString()!)
                    : counts.EnumerateArray().Select(e => e.GetInt64()).ToArray();
            }
            catch (ArgumentException e) { throw Bad($"{where}: {e.Message}"); }
            if (runs.Sum() != (long)image.Height * image.Width)
                throw Bad($"{where}: RLE counts add up to {runs.Sum()}, not {image.Height} x {image.Width}");
            return (null, runs);
        }
        throw Bad($"{where}: segmentation is neither a list of polygons nor an RLE {{size, counts}}");
    }

    static JsonDocument ParseJson(string path)
    {
        try { return JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message}).", e); }
    }

    IEnumerable<JsonElement> Array(JsonElement root, string name) =>
        root.TryGetProperty(name, out var a) && a.ValueKind == JsonValueKind.Array ? a.EnumerateArray() : throw Bad($"no \"{name}\" list");

    long Long(JsonElement e, string name, string where) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt64() : throw Bad($"{where}: \"{name}\" is missing or not a number");

    string Str(JsonElement e, string name, string where) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Bad($"{where}: \"{name}\" is missing or not a string");

    InvalidDataException Bad(string what) => new($"{AnnotationFile}: {what}.");
}

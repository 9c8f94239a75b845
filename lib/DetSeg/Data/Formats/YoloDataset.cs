using System.Globalization;
using static TorchSharp.torch;

namespace DetSeg.Data.Formats;

/// <summary>
/// A YOLO (darknet/ultralytics) detection folder: <c>images/</c> holding the images, <c>labels/</c> holding one
/// <c>NAME.txt</c> per image with lines <c>class cx cy w h</c> (normalised to [0, 1]), and <c>data.yaml</c> whose
/// <c>names</c> lists the classes (a <c>[a, b]</c> list, a <c>- a</c> block or a <c>0: a</c> map). An image without a
/// label file has no objects. Items have no masks.
/// </summary>
/// <remarks>Bad labels (wrong field count, class outside <c>names</c>, a value outside [0, 1], a box past the image) raise an error naming the file and line.</remarks>
public sealed class YoloDataset : IAnnotatedDataset
{
    readonly string[] files;

    /// <summary>Opens <paramref name="root"/> (holding images/, labels/, data.yaml) and checks every label file.</summary>
    /// <param name="root">The dataset folder.</param>
    /// <param name="split">A sub-folder of images/ and labels/ (e.g. "train"), or null for none.</param>
    public YoloDataset(string root, string? split = null)
    {
        Root = Path.GetFullPath(root);
        ImageFolder = Path.Combine(Root, "images", split ?? "");
        LabelFolder = Path.Combine(Root, "labels", split ?? "");
        if (!Directory.Exists(ImageFolder)) throw new DirectoryNotFoundException($"YOLO dataset: {ImageFolder} does not exist.");
        string yaml = Path.Combine(Root, "data.yaml");
        if (!File.Exists(yaml)) throw new FileNotFoundException($"YOLO dataset: {yaml} (class names) does not exist.", yaml);
        Classes = ReadNames(yaml);
        files = Directory.GetFiles(ImageFolder).Where(ImageFiles.IsImage).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;
        foreach (var f in files) ReadLabels(f); // fail on open, not in the middle of training
    }

    /// <summary>The dataset folder.</summary>
    public string Root { get; }
    /// <summary>Where the images are.</summary>
    public string ImageFolder { get; }
    /// <summary>Where the label files are.</summary>
    public string LabelFolder { get; }
    /// <inheritdoc/>
    public IReadOnlyList<string> Classes { get; }
    /// <inheritdoc/>
    public int Count => files.Length;

    /// <inheritdoc/>
    public AnnotatedImage this[int index]
    {
        get
        {
            DatasetExtensions.CheckIndex(index, Count, "YoloDataset");
            var image = ImageFiles.ReadRgb(Path.Combine(ImageFolder, files[index]));
            long H = image.shape[1], W = image.shape[2];
            var rows = ReadLabels(files[index]);
            var boxes = rows.SelectMany(r => new[] { (r.Cx - r.W / 2) * W, (r.Cy - r.H / 2) * H, (r.Cx + r.W / 2) * W, (r.Cy + r.H / 2) * H }).Select(v => (float)v).ToArray();
            return new AnnotatedImage(files[index], image, tensor(boxes, [rows.Count, 4]), tensor(rows.Select(r => (long)r.Class).ToArray(), [rows.Count]), null);
        }
    }

    List<(int Class, double Cx, double Cy, double W, double H)> ReadLabels(string imageFile)
    {
        string path = Path.Combine(LabelFolder, Path.GetFileNameWithoutExtension(imageFile) + ".txt");
        var rows = new List<(int, double, double, double, double)>();
        if (!File.Exists(path)) return rows;
        int lineNo = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0) continue;
            var f = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            string where = $"{path} line {lineNo} (\"{line}\")";
            if (f.Length != 5) throw new InvalidDataException($"{where}: expected 'class cx cy w h', got {f.Length} fields (segment polygons are not supported).");
            if (!int.TryParse(f[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int c) || c < 0 || c >= Classes.Count)
                throw new InvalidDataException($"{where}: class '{f[0]}' is not one of the {Classes.Count} names in data.yaml (0..{Classes.Count - 1}).");
            var v = new double[4];
            for (int i = 0; i < 4; i++)
                if (!double.TryParse(f[i + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out v[i]) || v[i] < 0 || v[i] > 1)
                    throw new InvalidDataException($"{where}: '{f[i + 1]}' is not a number in [0, 1] (values are normalised by the image size).");
            const double eps = 1e-3;
            if (v[2] <= 0 || v[3] <= 0 || v[0] - v[2] / 2 < -eps || v[0] + v[2] / 2 > 1 + eps || v[1] - v[3] / 2 < -eps || v[1] + v[3] / 2 > 1 + eps)
                throw new InvalidDataException($"{where}: the box is empty or reaches outside the image.");
            rows.Add((c, v[0], v[1], v[2], v[3]));
        }
        return rows;
    }

    /// <summary>Reads <c>names</c> from a data.yaml: <c>names: [a, b]</c>, a <c>- a</c> block, or a <c>0: a</c> map.</summary>
    public static string[] ReadNames(string yamlPath)
    {
        var lines = File.ReadAllLines(yamlPath);
        for (int i = 0; i < lines.Length; i++)
        {
            var line = StripComment(lines[i]);
            if (!line.StartsWith("names:", StringComparison.Ordinal)) continue;
            var rest = line["names:".Length..].Trim();
            if (rest.StartsWith('['))
                return rest.Trim('[', ']').Split(',').Select(Unquote).Where(s => s.Length > 0).ToArray();
            var names = new SortedDictionary<int, string>();
            int next = 0;
            for (int j = i + 1; j < lines.Length; j++)
            {
                var raw = StripComment(lines[j]);
                if (raw.Trim().Length == 0) continue;
                if (!char.IsWhiteSpace(lines[j][0])) break; // the block ended
                var item = raw.Trim();
                if (item.StartsWith("- ")) names[next++] = Unquote(item[2..]);
                else if (item.IndexOf(':') is int k and > 0 && int.TryParse(item[..k], out int id)) names[id] = Unquote(item[(k + 1)..]);
                else throw new InvalidDataException($"{yamlPath} line {j + 1}: cannot read a class name from \"{item}\".");
            }
            if (names.Count == 0) break;
            if (names.Keys.First() != 0 || names.Keys.Last() != names.Count - 1)
                throw new InvalidDataException($"{yamlPath}: class ids in names must be 0..{names.Count - 1}, got {string.Join(", ", names.Keys)}.");
            return names.Values.ToArray();
        }
        throw new InvalidDataException($"{yamlPath}: no 'names' list of classes.");
    }

    static string StripComment(string line) { int k = line.IndexOf(" #", StringComparison.Ordinal); return (k >= 0 ? line[..k] : line).TrimEnd(); }
    static string Unquote(string s) => s.Trim().Trim('\'', '"');
}

/// <summary>Writes annotated images as a YOLO folder (images/, labels/, data.yaml) for ultralytics and darknet.</summary>
public static class YoloWriter
{
    /// <summary>Writes PNG images, one label file per image (<c>class cx cy w h</c>, 6 decimals) and data.yaml; returns the image count.</summary>
    public static int Write(string root, IEnumerable<AnnotatedImage> items, IReadOnlyList<string> classes, bool disposeItems = true)
    {
        Directory.CreateDirectory(Path.Combine(root, "images"));
        Directory.CreateDirectory(Path.Combine(root, "labels"));
        int n = 0;
        var used = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var item in items)
        {
            try
            {
                string stem = Path.GetFileNameWithoutExtension(item.Name);
                for (int k = 2; !used.Add(stem); k++) stem = $"{Path.GetFileNameWithoutExtension(item.Name)}_{k}";
                ImageFiles.WritePng(Path.Combine(root, "images", stem + ".png"), item.Image);
                var b = item.Boxes.cpu().data<float>().ToArray();
                var l = item.Labels.cpu().data<long>().ToArray();
                double W = item.Width, H = item.Height;
                var lines = Enumerable.Range(0, l.Length).Select(i => string.Format(CultureInfo.InvariantCulture, "{0} {1:F6} {2:F6} {3:F6} {4:F6}",
                    l[i], (b[4 * i] + b[4 * i + 2]) / 2 / W, (b[4 * i + 1] + b[4 * i + 3]) / 2 / H, (b[4 * i + 2] - b[4 * i]) / W, (b[4 * i + 3] - b[4 * i + 1]) / H));
                string text = string.Join("\n", lines) + (l.Length > 0 ? "\n" : "");
                Interop.AtomicWrite.ToFile(Path.Combine(root, "labels", stem + ".txt"), s => s.Write(System.Text.Encoding.UTF8.GetBytes(text)));
                n++;
            }
            finally { if (disposeItems) item.Dispose(); }
        }
        string yaml = $"# written by DetSeg\npath: .\ntrain: images\nval: images\nnc: {classes.Count}\nnames: [{string.Join(", ", classes.Select(c => $"'{c}'"))}]\n";
        Interop.AtomicWrite.ToFile(Path.Combine(root, "data.yaml"), s => s.Write(System.Text.Encoding.UTF8.GetBytes(yaml)));
        return n;
    }
}

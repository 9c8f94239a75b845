using System.Globalization;
using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace DetSeg.Data.Formats;

/// <summary>Penn-Fudan's own PASCAL-style annotation files (<c>Annotation/NAME.txt</c>): the boxes its authors drew.</summary>
public static partial class PennFudanAnnotations
{
    [GeneratedRegex(@"^Bounding box for object (\d+) .*:\s*\((\d+),\s*(\d+)\)\s*-\s*\((\d+),\s*(\d+)\)")]
    private static partial Regex BoxLine();

    /// <summary>
    /// The boxes of one annotation file as [N x 4] float32 xyxy in <see cref="AnnotatedImage"/>'s convention: the file's
    /// 1-based inclusive (Xmin, Ymin) - (Xmax, Ymax) becomes (Xmin - 1, Ymin - 1, Xmax, Ymax). Row i is object i + 1.
    /// </summary>
    public static Tensor ReadBoxes(string path)
    {
        var boxes = new SortedDictionary<int, float[]>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            var m = BoxLine().Match(line);
            if (!m.Success) continue;
            int obj = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            var v = Enumerable.Range(2, 4).Select(g => float.Parse(m.Groups[g].Value, CultureInfo.InvariantCulture)).ToArray();
            if (v[2] < v[0] || v[3] < v[1]) throw new InvalidDataException($"{path} line {lineNo}: box for object {obj} has Xmax < Xmin or Ymax < Ymin.");
            if (!boxes.TryAdd(obj, [v[0] - 1, v[1] - 1, v[2], v[3]])) throw new InvalidDataException($"{path} line {lineNo}: object {obj} has two boxes.");
        }
        if (boxes.Count > 0 && (boxes.Keys.First() != 1 || boxes.Keys.Last() != boxes.Count))
            throw new InvalidDataException($"{path}: objects are numbered {string.Join(", ", boxes.Keys)}, not 1..{boxes.Count}.");
        return tensor(boxes.Values.SelectMany(b => b).ToArray(), [boxes.Count, 4]);
    }

    /// <summary>
    /// Compares each image's annotated boxes with the boxes derived from its mask (object k of the file with mask id k):
    /// the mean IoU of the pairs per image, in file-name order.
    /// </summary>
    /// <param name="root">The PennFudanPed folder (Annotation/, PedMasks/, PNGImages/).</param>
    /// <param name="maxImages">Only the first this many images (null: all).</param>
    public static IReadOnlyList<(string Name, int Objects, double MeanIoU)> CompareWithMasks(string root, int? maxImages = null)
    {
        var masks = new ImageMaskFolder(root, "PNGImages", "PedMasks", "_mask", ["pedestrian"]);
        var result = new List<(string, int, double)>();
        for (int i = 0; i < Math.Min(masks.Count, maxImages ?? int.MaxValue); i++)
        {
            using var item = masks[i];
            using var scope = NewDisposeScope();
            string name = Path.GetFileNameWithoutExtension(item.Name);
            var annotated = ReadBoxes(Path.Combine(root, "Annotation", name + ".txt"));
            if (annotated.shape[0] != item.Count)
                throw new InvalidDataException($"{name}: the annotation lists {annotated.shape[0]} objects, the mask has ids 1..{item.Count}.");
            double iou = MaskBoxes.PairwiseIoU(annotated, item.Boxes).mean().item<float>();
            result.Add((name, (int)item.Count, iou));
        }
        return result;
    }

    /// <summary>Penn-Fudan as annotated images whose boxes are the authors' (masks from PedMasks), for a COCO export.</summary>
    public static IEnumerable<AnnotatedImage> WithAnnotatedBoxes(string root)
    {
        var masks = new ImageMaskFolder(root, "PNGImages", "PedMasks", "_mask", ["pedestrian"]);
        for (int i = 0; i < masks.Count; i++)
        {
            var item = masks[i];
            var boxes = ReadBoxes(Path.Combine(root, "Annotation", Path.GetFileNameWithoutExtension(item.Name) + ".txt"));
            item.Boxes.Dispose();
            yield return item with { Boxes = boxes };
        }
    }
}

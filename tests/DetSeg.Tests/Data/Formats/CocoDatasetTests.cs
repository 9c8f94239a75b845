using System.Text.Json.Nodes;
using DetSeg.Data;
using DetSeg.Data.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Data.Formats;

public class CocoDatasetTests
{
    static readonly torch.Device Cpu = new(DeviceType.CPU);

    /// <summary>A two-image COCO folder (8 x 6 and 9 x 6 images), categories 3 "cat" and 7 "dog".</summary>
    static (string Json, JsonObject Doc) Folder()
    {
        string dir = TestPaths.NewTempDir();
        File.WriteAllBytes(Path.Combine(dir, "a.png"), DetSeg.Tests.Data.Fixtures.RgbPng(8, 6));
        File.WriteAllBytes(Path.Combine(dir, "b.png"), DetSeg.Tests.Data.Fixtures.RgbPng(9, 6));
        var doc = JsonNode.Parse("""
        {
          "images": [{"id": 10, "file_name": "a.png", "width": 8, "height": 6}, {"id": 11, "file_name": "b.png", "width": 9, "height": 6}],
          "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}],
          "annotations": [
            {"id": 1, "image_id": 10, "category_id": 7, "bbox": [1, 1, 3, 2], "segmentation": [[1, 1, 4, 1, 4, 3, 1, 3]], "iscrowd": 0},
            {"id": 2, "image_id": 11, "category_id": 3, "bbox": [0, 0, 2, 3], "segmentation": {"size": [6, 9], "counts": [0, 3, 3, 3, 45]}, "iscrowd": 1}
          ]
        }
        """)!.AsObject();
        string json = Path.Combine(dir, "instances.json");
        File.WriteAllText(json, doc.ToJsonString());
        return (json, doc);
    }

    [Fact]
    public void Reads_BoxesLabelsAndMasks_FromPolygonsAndRle()
    {
        var (json, _) = Folder();
        var ds = new CocoDataset(json);
        Assert.Equal(new[] { "cat", "dog" }, ds.Classes); // sorted by category id: 3, 7
        using var a = ds[0];
        Assert.Equal(new float[] { 1, 1, 4, 3 }, a.Boxes.data<float>().ToArray());
        Assert.Equal(new long[] { 1 }, a.Labels.data<long>().ToArray());
        Assert.Equal(6, a.InstanceMask!.eq(1).sum().item<long>()); // the 3 x 2 polygon
        using var b = ds[1];
        Assert.Equal(new long[] { 0 }, b.Labels.data<long>().ToArray());
        // RLE [0, 3, 3, 3, 45]: columns 0 and 1 are foreground in rows 0..2 (3 on, 3 off, 3 on)
        var expected = zeros(6, 9, ScalarType.Int64);
        expected[TensorIndex.Slice(0, 3), TensorIndex.Slice(0, 2)] = tensor(1L);
        Assert.True(b.InstanceMask!.Same(expected));
    }

    [Theory]
    [InlineData("box", "bbox [6, 1, 3, 2] is empty or outside the image")]
    [InlineData("category", "category_id 5 is not in categories")]
    [InlineData("image_id", "image_id 99 is not in images")]
    [InlineData("polygon", "a polygon has 4 coordinates; it needs at least three (x, y) points")]
    [InlineData("rle", "RLE size [5, 9] differs from the image's [height 6, width 9]")]
    [InlineData("missing", "image file")]
    public void BadAnnotation_NamesTheFileAndTheAnnotation(string fault, string message)
    {
        var (json, doc) = Folder();
        var anns = doc["annotations"]!.AsArray();
        switch (fault)
        {
            case "box": anns[0]!["bbox"] = new JsonArray(6, 1, 3, 2); break;
            case "category": anns[0]!["category_id"] = 5; break;
            case "image_id": anns[0]!["image_id"] = 99; break;
            case "polygon": anns[0]!["segmentation"] = JsonNode.Parse("[[1, 1, 4, 1]]"); break;
            case "rle": anns[1]!["segmentation"]!["size"] = new JsonArray(5, 9); break;
            case "missing": File.Delete(Path.Combine(Path.GetDirectoryName(json)!, "b.png")); break;
        }
        File.WriteAllText(json, doc.ToJsonString());
        var ex = Assert.Throws<InvalidDataException>(() => new CocoDataset(json));
        Assert.Contains(json, ex.Message);
        Assert.Contains(message, ex.Message);
        if (fault is "box" or "category" or "polygon") Assert.Contains("annotation 1 (image a.png", ex.Message);
        if (fault is "rle") Assert.Contains("annotation 2 (image b.png", ex.Message);
        if (fault is "missing") Assert.Contains("image id 11", ex.Message);
    }

    [Fact]
    public void ImageOfAnotherSizeThanTheJson_IsAnError()
    {
        var (json, doc) = Folder();
        doc["images"]![1]!["width"] = 10;
        doc["annotations"]![1]!["segmentation"] = null;
        File.WriteAllText(json, doc.ToJsonString());
        var ds = new CocoDataset(json);
        var ex = Assert.Throws<InvalidDataException>(() => ds[1]);
        Assert.Contains("b.png is 9 x 6 but the JSON says 10 x 6", ex.Message);
    }

    [Fact]
    public void MnistClutter_ToCocoAndBack_KeepsBoxesLabelsAndMasks_AndYoloKeepsBoxes()
    {
        using var mnist = new MNIST(DetSeg.Tests.Data.Fixtures.MnistFolder(20), download: false);
        var clutter = new MNISTClutter(imageSize: 64, maxNumDigits: 5, mnist: mnist, device: Cpu);
        var mc = new MCDetection(clutter);
        string dir = TestPaths.NewTempDir();
        var classes = Enumerable.Range(0, 10).Select(d => d.ToString()).ToArray();
        int n = CocoWriter.Write(Path.Combine(dir, "coco", "instances.json"), Path.Combine(dir, "coco"), AnnotatedAdapters.FromMnistClutter(clutter, Enumerable.Range(0, 6)), classes);
        Assert.Equal(6, n);
        YoloWriter.Write(Path.Combine(dir, "yolo"), AnnotatedAdapters.FromMnistClutter(clutter, Enumerable.Range(0, 6)), classes);
        var coco = new CocoDataset(Path.Combine(dir, "coco", "instances.json"));
        var yolo = new YoloDataset(Path.Combine(dir, "yolo"));
        Assert.Equal(classes, coco.Classes);
        Assert.Equal(classes, yolo.Classes);
        int objects = 0;
        for (int i = 0; i < 6; i++)
        {
            // MCDetection's own boxes (normalized cx, cy, w, h) and labels for image i, the independent reference
            var item = mc[i];
            var valid = item[2].ge(0);
            var refBoxes = item[1][valid] * 64;
            var refLabels = item[2][valid];
            using var c = coco[i];
            var cxcywh = stack([(c.Boxes[.., 0] + c.Boxes[.., 2]) / 2, (c.Boxes[.., 1] + c.Boxes[.., 3]) / 2, c.Boxes[.., 2] - c.Boxes[.., 0], c.Boxes[.., 3] - c.Boxes[.., 1]], 1);
            Assert.True(cxcywh.allclose(refBoxes, atol: 1e-4), $"image {i} boxes");
            Assert.Equal(refLabels.data<long>().ToArray(), c.Labels.data<long>().ToArray());
            // masks: the clutter's ids in ascending order are objects 1..N
            var mask = clutter[i][1];
            var (ids, _, _) = mask.masked_select(mask.ge(0)).unique();
            var dense = zeros_like(mask);
            var idArr = ids.data<long>().ToArray();
            for (int k = 0; k < idArr.Length; k++) dense.masked_fill_(mask.eq(idArr[k]), k + 1);
            Assert.True(c.InstanceMask!.Same(dense), $"image {i} mask");
            using var y = yolo[i];
            Assert.True(y.Boxes.allclose(c.Boxes, atol: 64 * 1e-6 + 1e-4), $"image {i} YOLO boxes");
            Assert.Equal(c.Labels.data<long>().ToArray(), y.Labels.data<long>().ToArray());
            objects += (int)c.Count;
        }
        Assert.True(objects >= 6, $"only {objects} digits in 6 images");
    }

    [Fact]
    public void CocoItems_FeedPFSegmentation_AsPennFudanDoes()
    {
        string root = DetSeg.Tests.Data.Fixtures.PennFudanFolder(3);
        var folder = new ImageMaskFolder(root, "PNGImages", "PedMasks", "_mask", ["pedestrian"]);
        string dir = TestPaths.NewTempDir();
        CocoWriter.Write(Path.Combine(dir, "instances.json"), dir, Enumerable.Range(0, folder.Count).Select(i => folder[i]), folder.Classes);
        var viaCoco = new PFSegmentation(new CocoDataset(Path.Combine(dir, "instances.json")).AsSegmentation(), imageSize: 16, device: Cpu);
        var direct = new PFSegmentation(new PennFudan(root, download: false), imageSize: 16, device: Cpu);
        for (int i = 0; i < 3; i++)
        {
            var (a, b) = (viaCoco[i], direct[i]);
            Assert.True(a[0].Same(b[0]), $"image {i}");
            Assert.True(a[1].Same(b[1]), $"mask {i}");
        }
    }
}

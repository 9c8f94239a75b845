using System.Security.Cryptography;
using DetSeg.Detection;

namespace DetSeg.Tests.Detection;

// darknet's own description of the network (yolov3.cfg) against BaseYOLOv3.DarknetLayers(), the order in which
// DarknetWeights reads and writes yolov3.weights. A Save -> Load round trip cannot catch two same-sized tensors
// in swapped order; this can, because every [convolutional] section is checked in file order.
public class DarknetLayoutTests
{
    const string CfgMd5 = "b969a43a848bbf26901643b833cfb96c";

    sealed record CfgConv(int Index, int InChannels, int Filters, int Size, int Stride, bool BatchNormalize, bool Pad, string Activation);
    sealed record CfgYolo(int[] Mask, (float w, float h)[] Anchors, int Classes, int Num);

    // The data folder's copy when there is one, else the committed fixture (the same file: the md5 is checked).
    static string CfgPath()
    {
        string? data = TestPaths.SharedData;
        string real = data is null ? "" : Path.Combine(data, "darknet", "yolov3.cfg");
        return File.Exists(real) ? real : Path.Combine(TestPaths.RepoRoot, "tests", "DetSeg.Tests", "Fixtures", "yolov3.cfg");
    }

    // darknet's parse_network_cfg, reduced to what fixes the weight layout: sections in order, with the output
    // channels of every layer tracked through [shortcut], [route] and [upsample] to know each conv's input.
    static (List<CfgConv> convs, List<CfgYolo> yolos, List<string> order) Parse(string path)
    {
        var sections = new List<(string name, Dictionary<string, string> opts)>();
        foreach (var raw in File.ReadAllLines(path))
        {
            string line = raw.Split('#')[0].Trim();
            if (line.Length == 0) continue;
            if (line.StartsWith('[')) { sections.Add((line.Trim('[', ']'), new())); continue; }
            int eq = line.IndexOf('=');
            sections[^1].opts[line[..eq].Trim()] = line[(eq + 1)..].Trim();
        }
        Assert.Equal("net", sections[0].name);
        int channels = int.Parse(sections[0].opts["channels"]);
        var outputs = new List<int>();   // output channels per layer (darknet's layer index)
        var convs = new List<CfgConv>(); var yolos = new List<CfgYolo>(); var order = new List<string>();
        foreach (var (name, o) in sections.Skip(1))
        {
            int input = outputs.Count == 0 ? channels : outputs[^1];
            int Get(string key, int fallback) => o.TryGetValue(key, out var v) ? int.Parse(v) : fallback;
            switch (name)
            {
                case "convolutional":
                    convs.Add(new CfgConv(outputs.Count, input, Get("filters", 1), Get("size", 1), Get("stride", 1),
                                          Get("batch_normalize", 0) == 1, Get("pad", 0) == 1, o["activation"]));
                    outputs.Add(convs[^1].Filters);
                    order.Add("conv");
                    break;
                case "shortcut":
                case "upsample":
                case "yolo":
                    outputs.Add(input);
                    order.Add(name);
                    if (name == "yolo")
                    {
                        var all = o["anchors"].Split(',').Select(s => float.Parse(s.Trim(), System.Globalization.CultureInfo.InvariantCulture)).ToArray();
                        var mask = o["mask"].Split(',').Select(s => int.Parse(s.Trim())).ToArray();
                        yolos.Add(new CfgYolo(mask, mask.Select(m => (all[2 * m], all[2 * m + 1])).ToArray(), Get("classes", 20), Get("num", 1)));
                    }
                    break;
                case "route":
                    var layers = o["layers"].Split(',').Select(s => int.Parse(s.Trim())).Select(l => l < 0 ? outputs.Count + l : l);
                    outputs.Add(layers.Sum(l => outputs[l]));
                    order.Add(name);
                    break;
                default:
                    throw new InvalidDataException($"{path}: unexpected section [{name}]");
            }
        }
        return (convs, yolos, order);
    }

    [Fact]
    public void DarknetLayers_FollowYolov3Cfg_LayerForLayer()
    {
        string path = CfgPath();
        Assert.Equal(CfgMd5, Convert.ToHexStringLower(MD5.HashData(File.ReadAllBytes(path))));
        var (convs, yolos, order) = Parse(path);
        Assert.Equal(75, convs.Count);   // darknet's YOLOv3: 75 convolutional layers (52 in Darknet-53 without its classifier)

        var model = new YOLOv3(3, 80);
        var layers = model.yolo.DarknetLayers().ToList();
        Assert.Equal(convs.Count, layers.Count);
        for (int i = 0; i < convs.Count; i++)
        {
            var (conv, bn) = layers[i];
            var c = convs[i];
            string at = $"conv #{i} (darknet layer {c.Index})";
            Assert.Equal(new long[] { c.Filters, c.InChannels, c.Size, c.Size }, conv.weight!.shape);
            Assert.True(c.Stride == conv.stride[0] && c.Stride == conv.stride[1], $"{at}: stride {c.Stride} in the cfg, [{string.Join(", ", conv.stride)}] in the model");
            Assert.True(c.Pad, $"{at}: darknet pads by size/2 when pad=1");
            Assert.True(conv.padding![0] == c.Size / 2, $"{at}: padding [{string.Join(", ", conv.padding!)}], darknet size/2 = {c.Size / 2}");
            // batch_normalize=1: BN (bias, weight, running mean, running var) and a conv without bias; else the conv has a bias
            Assert.True(c.BatchNormalize == bn is not null, $"{at}: batch_normalize={(c.BatchNormalize ? 1 : 0)} but the model {(bn is null ? "has no" : "has a")} BatchNorm");
            Assert.True(c.BatchNormalize == conv.bias is null, $"{at}: a conv {(conv.bias is null ? "without" : "with")} bias next to batch_normalize={(c.BatchNormalize ? 1 : 0)}");
            if (bn is not null) Assert.Equal(new long[] { c.Filters }, bn.weight!.shape);
            Assert.Equal(c.BatchNormalize ? "leaky" : "linear", c.Activation);
        }
        // the layers without BN are the three head outputs, each right before its [yolo] section
        var heads = convs.Where(c => !c.BatchNormalize).Select(c => c.Index).ToArray();
        Assert.Equal(3, heads.Length);
        foreach (int h in heads) Assert.Equal("yolo", order[h + 1]);
        // two [upsample] layers, each right after the 1x1 conv of a ConcatUnit
        var ups = Enumerable.Range(0, order.Count).Where(i => order[i] == "upsample").ToArray();
        Assert.Equal(2, ups.Length);
        foreach (int u in ups) Assert.Equal(1, convs.Single(c => c.Index == u - 1).Size);
    }

    [Fact]
    public void YoloSections_MatchTheModelsAnchorSets()
    {
        var (_, yolos, _) = Parse(CfgPath());
        Assert.Equal(3, yolos.Count);
        var model = new YOLOv3(3, 80);
        var anchors = model.anchors.data<float>().ToArray();   // [3 x K x 2], coarsest set (y1, stride 32) first
        for (int s = 0; s < 3; s++)
        {
            Assert.Equal(80, yolos[s].Classes);
            Assert.Equal(9, yolos[s].Num);
            Assert.Equal(model.yolo.NumAnchors, yolos[s].Mask.Length);
            for (int k = 0; k < yolos[s].Mask.Length; k++)
            {
                Assert.Equal(yolos[s].Anchors[k].w, anchors[(s * 3 + k) * 2]);
                Assert.Equal(yolos[s].Anchors[k].h, anchors[(s * 3 + k) * 2 + 1]);
            }
            // the head before this [yolo] predicts K x (4 + 1 + C) channels for this mask
            Assert.Equal(yolos[s].Mask.Length * (5 + yolos[s].Classes), model.yolo.DarknetLayers().Where(l => l.bn is null).ElementAt(s).conv.weight!.shape[0]);
        }
        Assert.Equal(new[] { 6, 7, 8 }, yolos[0].Mask);   // file order: stride 32 first, as our y1
        Assert.Equal(new[] { 0, 1, 2 }, yolos[2].Mask);
    }
}

using DetSeg.Detection;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Detection;

[Collection(GlobalRng.Name)]
public class DarknetWeightsTests
{
    static readonly ModelScale Tiny = new(0.125, 0.25);

    static YOLOv3 RandomModel(long classes, int seed)
    {
        manual_seed(seed);
        var m = new YOLOv3(3, classes, Tiny);
        using var _ = no_grad();
        foreach (var (_, bn) in m.yolo.DarknetLayers())
            if (bn is not null) { bn.running_mean!.normal_(); bn.running_var!.uniform_(0.5, 2); bn.bias!.normal_(); bn.weight!.normal_(); }
        return m;
    }

    static Dictionary<string, Tensor> State(nn.Module m) => m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());

    // The official yolov3.weights is 248,007,048 bytes: a 20-byte header + 62,001,757 float32 values.
    [Fact]
    public void ExpectedFloats_FullModel_MatchesOfficialFileSize() =>
        Assert.Equal((248_007_048L - 20) / 4, DarknetWeights.ExpectedFloats(new YOLOv3(3, 80)));

    [Fact]
    public void HeadOrder_MapsOurFieldMajorChannelsToDarknetAnchorMajor()
    {
        var order = DarknetWeights.HeadOrder(3, 80).data<long>().ToArray();
        Assert.Equal(255, order.Length);
        Assert.Equal(4, order[0]);        // objectness, anchor 0  <- darknet field 4 of anchor 0
        Assert.Equal(85 + 4, order[1]);   // objectness, anchor 1
        Assert.Equal(0, order[3]);        // x, anchor 0
        Assert.Equal(2 * 85 + 3, order[4 * 3 + 2]); // h, anchor 2
        Assert.Equal(5, order[15]);       // class 0, anchor 0
        Assert.Equal(Enumerable.Range(0, 255).Select(i => (long)i), order.OrderBy(v => v));
    }

    [Fact]
    public void SaveThenLoad_RoundTripsEveryTensor_AndGivesIdenticalDetections()
    {
        string dir = TestPaths.NewTempDir(), path = Path.Combine(dir, "tiny.weights");
        var a = RandomModel(80, 1);
        DarknetWeights.Save(a, path);
        Assert.Equal(20 + 4 * DarknetWeights.ExpectedFloats(a), new FileInfo(path).Length);
        var b = RandomModel(80, 2);
        Assert.Equal(InterpolationMode.Bilinear, b.yolo.Upsampling);    // the course's default
        var header = DarknetWeights.Load(b, path);
        Assert.Equal(new DarknetWeights.Header(0, 2, 0, 0), header);
        Assert.Equal(InterpolationMode.Nearest, b.yolo.Upsampling);     // darknet weights bring darknet's upsampling
        a.yolo.Upsampling = InterpolationMode.Nearest;
        var sa = State(a); var sb = State(b);
        foreach (var (k, v) in sa) Assert.True(v.equal(sb[k]).all().item<bool>(), k);
        var x = rand(1, 3, 64, 64);
        using var da = a.Detect(x); using var db = b.Detect(x);
        Assert.True(da.Scores.equal(db.Scores).all().item<bool>());
        Assert.True(da.Boxes.equal(db.Boxes).all().item<bool>());
        Assert.True(da.Labels.equal(db.Labels).all().item<bool>());
        Assert.Empty(Directory.GetFiles(dir, "*.tmp-*"));
    }

    [Fact]
    public void Load_UpsamplingNull_KeepsTheModelsMode_AndAFailedLoadChangesNothing()
    {
        string dir = TestPaths.NewTempDir(), path = Path.Combine(dir, "w.weights");
        DarknetWeights.Save(RandomModel(80, 5), path);
        var keep = RandomModel(80, 6);
        DarknetWeights.Load(keep, path, upsampling: null);
        Assert.Equal(InterpolationMode.Bilinear, keep.yolo.Upsampling);
        File.WriteAllBytes(path, File.ReadAllBytes(path)[..^4]);
        var failed = RandomModel(80, 7);
        Assert.Throws<InvalidDataException>(() => DarknetWeights.Load(failed, path));
        Assert.Equal(InterpolationMode.Bilinear, failed.yolo.Upsampling);
    }

    // darknet's [upsample] (stride 2): out[c, y, x] = in[c, y / 2, x / 2], each value copied into a 2 x 2 block.
    [Fact]
    public void ConcatUnit_Nearest_IsDarknetsUpsample_BilinearStaysTheDefault()
    {
        manual_seed(3);
        var unit = new ConcatUnit(4);
        unit.eval();
        Assert.Equal(InterpolationMode.Bilinear, unit.Mode);
        var x = randn(2, 4, 3, 3); var skip = randn(2, 5, 6, 6);
        using var _ = no_grad();
        var reduced = unit.net.call(x);                                             // [2 x 2 x 3 x 3]
        unit.Mode = InterpolationMode.Nearest;
        var y = unit.call(x, skip);                                                 // [2 x (2 + 5) x 6 x 6]
        Assert.Equal(new long[] { 2, 7, 6, 6 }, y.shape);
        var expected = reduced.repeat_interleave(2, 2).repeat_interleave(2, 3);
        Assert.True(y[.., ..2].equal(expected).all().item<bool>());
        Assert.True(y[.., 2..].equal(skip).all().item<bool>());
        unit.Mode = InterpolationMode.Bilinear;                                     // align_corners: corners kept, inside blended
        var yb = unit.call(x, skip)[.., ..2];
        Assert.True(yb[.., .., 0, 0].allclose(reduced[.., .., 0, 0]));
        Assert.False(yb.allclose(expected));
        Assert.Throws<ArgumentException>(() => unit.Mode = InterpolationMode.Bicubic);
    }

    [Fact]
    public void Load_WrongSize_ThrowsWithCounts_AndLeavesModelUntouched()
    {
        string dir = TestPaths.NewTempDir(), path = Path.Combine(dir, "w.weights");
        DarknetWeights.Save(RandomModel(80, 3), path);
        byte[] bytes = File.ReadAllBytes(path);
        long expected = DarknetWeights.ExpectedFloats(RandomModel(80, 4));
        var target = RandomModel(80, 4);
        var before = State(target);

        File.WriteAllBytes(path, bytes[..^4]);               // one float short
        var shortEx = Assert.Throws<InvalidDataException>(() => DarknetWeights.Load(target, path));
        Assert.Contains($"{expected:N0}", shortEx.Message);
        Assert.Contains($"{expected - 1:N2}", shortEx.Message);
        Assert.Contains("too short", shortEx.Message);

        File.WriteAllBytes(path, [.. bytes, 0, 0, 0, 0]);     // one float too many
        var longEx = Assert.Throws<InvalidDataException>(() => DarknetWeights.Load(target, path));
        Assert.Contains("too long", longEx.Message);

        foreach (var (k, v) in before) Assert.True(v.equal(target.state_dict()[k]).all().item<bool>(), k);
        Assert.Throws<FileNotFoundException>(() => DarknetWeights.Load(target, Path.Combine(dir, "missing.weights")));
    }

    [Fact]
    public void Load_OtherClassCount_SkipsHeads_LoadsEverythingElse()
    {
        string dir = TestPaths.NewTempDir(), path = Path.Combine(dir, "coco.weights");
        var coco = RandomModel(80, 5);
        DarknetWeights.Save(coco, path);
        var mc = RandomModel(10, 6);
        var headsBefore = new[] { mc.yolo.head1.pred.weight!.clone(), mc.yolo.head2.pred.bias!.clone() };
        DarknetWeights.Load(mc, path);  // fileClasses = 80 (COCO)
        Assert.True(mc.yolo.head1.pred.weight!.equal(headsBefore[0]).all().item<bool>());
        Assert.True(mc.yolo.head2.pred.bias!.equal(headsBefore[1]).all().item<bool>());
        Assert.True(mc.yolo.backbone.feature1.parameters().First().equal(coco.yolo.backbone.feature1.parameters().First()).all().item<bool>());
        Assert.True(mc.yolo.head3.conv.conv.weight!.equal(coco.yolo.head3.conv.conv.weight!).all().item<bool>());
        Assert.Contains("yolov3.weights", DarknetWeights.MissingMessage());
    }
}

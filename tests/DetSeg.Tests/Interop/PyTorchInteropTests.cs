using DetSeg.Detection;
using DetSeg.Interop;
using DetSeg.Segmentation;
using static DetSeg.Tests.Interop.InteropModels;
using static TorchSharp.torch;

namespace DetSeg.Tests.Interop;

/// <summary>
/// State_dicts made by PyTorch itself (tools/fixtures/make_interop_fixtures.py: the reference port's models at small
/// widths, weights and eval outputs on a fixed input) load into the DetSeg models and give the same outputs.
/// </summary>
public class PyTorchInteropTests(Xunit.Abstractions.ITestOutputHelper log)
{
    [Theory]
    [InlineData("unet", "unet.pt")]
    [InlineData("unet", "unet.safetensors")]
    [InlineData("yolo", "yolo.pt")]
    [InlineData("vit", "vit.pt")]
    [InlineData("vit", "vit.safetensors")]
    public void PyTorchWeights_LoadIntoDetSegModel_GiveThePyTorchOutputs(string kind, string file)
    {
        var model = Build(kind);
        var (missing, unexpected) = PyTorchWeights.Load(model, Fixture(file));
        Assert.Empty(missing);
        Assert.Empty(unexpected);
        var io = Safetensors.Read(Fixture($"{kind}_io.safetensors"));
        var outputs = Outputs(model, io["input"]);
        Assert.NotEmpty(outputs);
        foreach (var (name, actual) in outputs)
        {
            log.WriteLine($"{file} {name}: max |diff| {MaxDiff(actual, io[name]):g}");
            AssertClose(actual, io[name], $"{file} {name}");
        }
    }

    [Fact]
    public void YoloWeights_CarryTheAnchorsAndBatchNormStatistics()
    {
        var model = Yolo();
        PyTorchWeights.Load(model, Fixture("yolo.pt"));
        // interop_models.py YOLO_ANCHORS: first (coarsest) set starts (40, 36), last set ends (12, 7)
        Assert.Equal(new[] { 40f, 36f }, model.anchors[0, 0].data<float>().ToArray());
        Assert.Equal(new[] { 12f, 7f }, model.anchors[2, 2].data<float>().ToArray());
        // make_interop_fixtures.py sets num_batches_tracked to 5 (a 0-dim int64 PyBridge reads as [1])
        var sd = model.state_dict();
        Assert.Equal(5L, sd["yolo.backbone.feature1.0.bn.num_batches_tracked"].item<long>());
        Assert.Empty(sd["yolo.backbone.feature1.0.bn.num_batches_tracked"].shape);
    }

    [Theory]
    // The course's names: conv_block() is Sequential(conv, bn, leaky), ResidualUnit.net = Sequential(conv_block, conv_block),
    // yolo_block = 5 conv_blocks, yolo_head = Sequential(conv_block, conv), feature2/feature3 = darknet53()[7:9]/[9:11].
    [InlineData("yolo.backbone.feature1.0.conv.weight", "yolo.feature1.0.0.weight")]
    [InlineData("yolo.backbone.feature1.2.0.expand.bn.running_var", "yolo.feature1.2.0.net.1.1.running_var")]
    [InlineData("yolo.backbone.feature2.0.conv.weight", "yolo.feature2.7.0.weight")]
    [InlineData("yolo.backbone.feature2.1.0.reduce.conv.weight", "yolo.feature2.8.0.net.0.0.weight")]
    [InlineData("yolo.backbone.feature3.1.0.reduce.bn.bias", "yolo.feature3.10.0.net.0.1.bias")]
    [InlineData("yolo.route1.c5.bn.num_batches_tracked", "yolo.route1.4.1.num_batches_tracked")]
    [InlineData("yolo.head2.conv.conv.weight", "yolo.head2.0.0.weight")]
    [InlineData("yolo.head2.pred.bias", "yolo.head2.1.bias")]
    [InlineData("yolo.concat1.net.bn.weight", "yolo.concat1.net.1.weight")]
    [InlineData("anchors", "anchors")]
    public void YoloKeys_MapToTheCourseNames(string detseg, string pytorch) =>
        Assert.Equal(pytorch, PyTorchNames.ToPyTorch(Yolo(), detseg));

    [Fact]
    public void UNetAndViTKeys_AreTheCourseNamesAlready()
    {
        Assert.All(PyTorchNames.Map(UNet()), m => Assert.Equal(m.DetSeg, m.PyTorch));
        Assert.All(PyTorchNames.Map(ViT()), m => Assert.Equal(m.DetSeg, m.PyTorch));
    }

    [Fact]
    public void WrongWidth_ListsEveryShapeMismatch_WithFileAndModelShapes()
    {
        var ex = Assert.Throws<StateDictMismatchException>(() => PyTorchWeights.Load(new SemanticSegmentor(3, 2, width: 2), Fixture("unet.pt")));
        Assert.Contains("unet.pt", ex.Message);
        Assert.Contains("enc_1.block.conv_block.0.weight [1 x 3 x 3 x 3] vs [2 x 3 x 3 x 3]", ex.Message);
        Assert.Contains(ex.ShapeMismatches, s => s.Key == "final_layer.weight");
        Assert.Empty(ex.Missing);
        Assert.Empty(ex.Unexpected);
    }

    [Fact]
    public void WrongModel_ListsMissingAndUnexpectedKeys_AndNonStrictLoadReportsThem()
    {
        var ex = Assert.Throws<StateDictMismatchException>(() => PyTorchWeights.Load(UNet(), Fixture("vit.safetensors")));
        Assert.Contains(ex.Missing, m => m.Key == "final_layer.bias");
        Assert.Contains(ex.Unexpected, u => u.Key == "cls_token" && u.Shape.SequenceEqual(new long[] { 1, 1, 16 }));
        Assert.Contains("missing key(s) (in the model, not in the file): enc_1.block.conv_block.0.weight [1 x 3 x 3 x 3]", ex.Message);
        Assert.Contains("unexpected key(s) (in the file, not in the model):", ex.Message);
        Assert.Contains("… and ", ex.Message); // 136 missing keys: the list is cut after 20

        var vitFile = Fixture("vit.pt");
        var partial = UNet();
        var before = partial.state_dict()["final_layer.bias"].clone();
        var (missing, unexpected) = PyTorchWeights.Load(partial, vitFile, strict: false);
        Assert.Equal(136, missing.Count);
        Assert.Equal(32, unexpected.Count);
        Assert.Equal(before.data<float>().ToArray(), partial.state_dict()["final_layer.bias"].data<float>().ToArray());
    }

    [Theory]
    [InlineData("yolo.pt")]
    [InlineData("yolo.safetensors")]
    public void DetSegSave_LoadsBackIntoDetSeg_Exactly(string name)
    {
        manual_seed(3);
        var a = Yolo();
        RandomizeBatchNorm(a, 4);
        string path = Path.Combine(TestPaths.NewTempDir(), name);
        PyTorchWeights.Save(a, path);
        var b = Yolo();
        PyTorchWeights.Load(b, path);
        var x = rand(1, 3, 32, 32);
        var (oa, ob) = (Outputs(a, x), Outputs(b, x));
        foreach (var k in oa.Keys) Assert.Equal(0.0, MaxDiff(ob[k], oa[k]));
        // the file holds the PyTorch names
        Assert.Contains("yolo.feature2.7.0.weight", PyTorchWeights.Read(path).Keys);
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(path)!)); // no temporary file left behind
    }

    [Fact]
    public void MissingOrForeignFile_SaysWhatItIs()
    {
        var dir = TestPaths.NewTempDir();
        Assert.Throws<FileNotFoundException>(() => PyTorchWeights.Load(UNet(), Path.Combine(dir, "none.pt")));
        string text = Path.Combine(dir, "notes.pt");
        File.WriteAllText(text, "not weights at all");
        var ex = Assert.Throws<InvalidDataException>(() => PyTorchWeights.Load(UNet(), text));
        Assert.Contains("notes.pt", ex.Message);
        Assert.Contains("not a PyTorch zip checkpoint", ex.Message);
        Assert.Throws<ArgumentException>(() => PyTorchWeights.Save(UNet(), Path.Combine(dir, "w.onnx")));
    }

    [Fact]
    public void ZipThatIsNoStateDict_NamesTheFile()
    {
        // A zip with a PyTorch-like layout whose pickle is garbage: the unpickler's own error becomes one that names the file.
        string path = Path.Combine(TestPaths.NewTempDir(), "broken.pt");
        using (var zip = System.IO.Compression.ZipFile.Open(path, System.IO.Compression.ZipArchiveMode.Create))
        {
            using var s = zip.CreateEntry("archive/data.pkl").Open();
            s.Write("\x80\x02garbage"u8);
        }
        var ex = Assert.Throws<InvalidDataException>(() => PyTorchWeights.Load(UNet(), path));
        Assert.Contains("broken.pt", ex.Message);
    }
}

using DetSeg.Data;
using DetSeg.Data.Formats;
using DetSeg.Detection;
using DetSeg.Inference;
using DetSeg.Interop;
using DetSeg.Segmentation;
using DetSeg.Tests.Data.Formats;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;
using static DetSeg.Tests.Interop.InteropModels;
using static TorchSharp.torch;

namespace DetSeg.Tests.Inference;

public class PredictorTests
{
    static readonly torch.Device Cpu = new(DeviceType.CPU);

    static string Images(params (int W, int H)[] sizes)
    {
        string dir = TestPaths.NewTempDir();
        for (int i = 0; i < sizes.Length; i++)
        {
            using var img = new Image<Rgb24>(sizes[i].W, sizes[i].H);
            for (int y = 0; y < sizes[i].H; y++)
                for (int x = 0; x < sizes[i].W; x++) img[x, y] = new Rgb24((byte)(x * 7 + i), (byte)(y * 5), (byte)((x * y) % 251));
            img.SaveAsPng(Path.Combine(dir, $"img{i}.png"));
        }
        return dir;
    }

    [Fact]
    public void BoxesMapBack_ToOriginalPixels()
    {
        // 100 x 50 image letterboxed into 200: scale 2, canvas rows 50..149. Box (10, 5)-(30, 25) is (20, 60)-(60, 100)
        // on the canvas: centre (40, 80), size 40 x 40, as fractions of 200: 0.2, 0.4, 0.2, 0.2.
        var back = Predictor.MapBoxesBack(tensor(new float[,] { { 0.2f, 0.4f, 0.2f, 0.2f } }), 200, 2, 2, 0, 50, 100, 50);
        Assert.True(back.allclose(tensor(new float[,] { { 10, 5, 30, 25 } }), atol: 1e-4));
        // and the detection adapter letterboxes the same way: a YOLO label of that box comes out as those fractions
        string root = TestPaths.NewTempDir();
        Directory.CreateDirectory(Path.Combine(root, "images"));
        Directory.CreateDirectory(Path.Combine(root, "labels"));
        File.Copy(Path.Combine(Images((100, 50)), "img0.png"), Path.Combine(root, "images", "a.png"));
        File.WriteAllText(Path.Combine(root, "labels", "a.txt"), "0 0.2 0.3 0.2 0.4\n");  // (10, 5)-(30, 25) in 100 x 50
        File.WriteAllText(Path.Combine(root, "data.yaml"), "names: [thing]\n");
        var item = new YoloDataset(root).AsDetection(200, 3)[0];
        Assert.Equal(new long[] { 3, 200, 200 }, item[0].shape);
        Assert.True(item[1][0].allclose(tensor(new[] { 0.2f, 0.4f, 0.2f, 0.2f }), atol: 1e-5));
        Assert.Equal(new long[] { 0, -1, -1 }, item[2].data<long>().ToArray());
    }

    [Theory]
    [InlineData("unet.pt")]
    [InlineData("yolo.pt")]
    public void ModelFile_BuildsTheArchitectureFromTheKeys_AndReproducesPyTorch(string file)
    {
        var (model, kind) = ModelFile.Load(Fixture(file), Cpu);
        Assert.Equal(file.StartsWith("unet") ? ModelKind.Segmentation : ModelKind.Detection, kind);
        if (model is YOLOv3 y)
        {
            Assert.Equal(2, y.NumClasses);
            Assert.Equal(1.0 / 32, y.Scale.Width);
            Assert.Equal(1, y.Scale.Repeats(8)); // every residual stage once
        }
        var io = Safetensors.Read(Fixture($"{file[..file.IndexOf('.')]}_io.safetensors"));
        foreach (var (name, actual) in Outputs(model, io["input"]))
            AssertClose(actual, io[name], name);
        var ex = Assert.Throws<InvalidDataException>(() => ModelFile.Load(Fixture("vit.pt"), Cpu));
        Assert.Contains("vit.pt", ex.Message);
    }

    [Fact]
    public void Segmentation_MasksHaveTheOriginalSize_AndTheCropIsTheImageRegion()
    {
        manual_seed(5);
        var unet = new SemanticSegmentor(3, 2, width: 2);
        RandomizeBatchNorm(unet, 6);
        var predictor = new Predictor(unet, 32, Cpu);
        string dir = Images((32, 32), (32, 16), (45, 27));
        var files = Directory.GetFiles(dir).Order().ToArray();
        var seen = new List<(int, int)>();
        var preds = predictor.Predict(files, batchSize: 2, new Progress(seen)).ToList();
        Assert.Equal(new[] { (2, 3), (3, 3) }, seen);
        Assert.Equal(new long[] { 32, 32 }, preds[0].Mask!.shape);
        Assert.Equal(new long[] { 16, 32 }, preds[1].Mask!.shape);
        Assert.Equal(new long[] { 27, 45 }, preds[2].Mask!.shape);

        unet.eval();
        using var _ = no_grad();
        // a 32 x 32 image is the input itself: the mask is the argmax of the model on the normalised image
        var x0 = PennFudan.Normalize(ImageFiles.ReadRgb(files[0]).to(float32).div(255)).unsqueeze(0);
        Assert.True(unet.call(x0)[0].argmax(0).Same(preds[0].Mask!));
        // a 32 x 16 image sits in rows 8..23 of the grey-padded canvas (PFSegmentation's padding)
        var padded = PFSegmentation.PadCenter(ImageFiles.ReadRgb(files[1]).to(float32).div(255), 32, 128f / 255);
        var full = unet.call(PennFudan.Normalize(padded).unsqueeze(0))[0].argmax(0);
        Assert.True(full[TensorIndex.Slice(8, 24)].Same(preds[1].Mask!));
    }

    [Fact]
    public void Detection_BoxesStayInsideEachOriginalImage_AndWriterOutputsExist()
    {
        var (model, _) = ModelFile.Load(Fixture("yolo.pt"), Cpu);
        var predictor = new Predictor(model, 64, Cpu) { ScoreThreshold = 0.0, MaxDetections = 20 };
        string dir = Images((64, 64), (150, 40), (30, 90));
        var files = Directory.GetFiles(dir).Order().ToArray();
        var preds = predictor.Predict(files, 3).ToList();
        foreach (var p in preds)
        {
            Assert.NotNull(p.Boxes);
            Assert.True(p.Labels!.shape[0] > 0);
            var b = p.Boxes!;
            Assert.True(b[.., 0].ge(0).all().item<bool>() && b[.., 2].le(p.Width).all().item<bool>(), p.File);
            Assert.True(b[.., 1].ge(0).all().item<bool>() && b[.., 3].le(p.Height).all().item<bool>(), p.File);
            Assert.True(p.Scores![..^1].ge(p.Scores[1..]).all().item<bool>(), "sorted by score");
        }
        string outDir = TestPaths.NewTempDir();
        PredictionWriter.WriteOverlay(Path.Combine(outDir, "o.png"), preds[1]);
        PredictionWriter.WriteCocoResults(Path.Combine(outDir, "d.json"), preds);
        using var overlay = ImageFiles.ReadRgb(Path.Combine(outDir, "o.png"));
        Assert.Equal(new long[] { 3, 40, 150 }, overlay.shape);
        var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "d.json")));
        Assert.Equal(preds.Sum(p => p.Labels!.shape[0]), json.RootElement.GetArrayLength());
        Assert.Equal(4, json.RootElement[0].GetProperty("bbox").GetArrayLength());
    }

    sealed class Progress(List<(int, int)> seen) : IProgress<(int Done, int Total)>
    {
        public void Report((int Done, int Total) value) => seen.Add(value);
    }
}

// Runs a trained U-Net or YOLOv3 over a folder of images: overlay PNGs plus COCO results JSON (detection) or
// class-mask PNGs (segmentation). The architecture is read from the weights file (see DetSeg.Inference.ModelFile).
using System.Diagnostics;
using DetSeg.Data.Formats;
using DetSeg.Inference;
using DetSeg.Runtime;

const string Usage = """
    usage: dotnet run --project tools/DetSeg.Predict -- --model WEIGHTS --images DIR --out DIR [options]
      --model FILE     .pt/.pth/.safetensors state_dict of a DetSeg/course U-Net or YOLOv3, or darknet yolov3.weights
      --images DIR     image files (png, jpg, bmp, gif, tiff, webp) of any size
      --out DIR        where overlays/, masks/ and detections.json go
      --size N         the model's square input (default 416 for .weights, else 128)
      --batch N        images per batch (default 8)
      --device D       cpu | cuda | cuda:N (default: DETSEG_DEVICE, else CUDA when present)
      --score X        detection score threshold (default 0.25)
      --iou X          NMS IoU threshold (default 0.45)
      --names FILE     class names, one per line (e.g. darknet's coco.names), for the JSON
      --precision P    fp32 (default) | bf16: weights and activations in bfloat16 (faster on CPUs with AVX512_BF16
                       or AMX, and on CUDA); outputs, NMS and masks stay float32
    """;

var opts = new Dictionary<string, string>();
for (int i = 0; i < args.Length; i++)
{
    if (args[i] is "-h" or "--help") { Console.WriteLine(Usage); return 0; }
    if (!args[i].StartsWith("--") || i + 1 >= args.Length) { Console.Error.WriteLine($"unexpected argument '{args[i]}'\n{Usage}"); return 2; }
    opts[args[i][2..]] = args[++i];
}
foreach (var required in new[] { "model", "images", "out" })
    if (!opts.ContainsKey(required)) { Console.Error.WriteLine($"--{required} is required\n{Usage}"); return 2; }
var unknown = opts.Keys.Except(["model", "images", "out", "size", "batch", "device", "score", "iou", "names", "precision"]).ToList();
if (unknown.Count > 0) { Console.Error.WriteLine($"unknown option(s): {string.Join(", ", unknown.Select(u => "--" + u))}\n{Usage}"); return 2; }

try
{
    Torch.EnsureLoaded();
    var device = opts.TryGetValue("device", out var d) ? new TorchSharp.torch.Device(d) : Device.Default;
    string model = opts["model"], images = opts["images"], output = opts["out"];
    if (!Directory.Exists(images)) throw new DirectoryNotFoundException($"--images {images} does not exist.");
    var files = Directory.GetFiles(images).Where(ImageFiles.IsImage).Order(StringComparer.Ordinal).ToArray();
    if (files.Length == 0) throw new InvalidDataException($"--images {images} holds no image files ({string.Join(" ", ImageFiles.Extensions)}).");
    int size = opts.TryGetValue("size", out var s) ? int.Parse(s) : model.EndsWith(".weights", StringComparison.OrdinalIgnoreCase) ? 416 : 128;
    int batch = opts.TryGetValue("batch", out var b) ? int.Parse(b) : 8;
    var names = opts.TryGetValue("names", out var n) ? File.ReadAllLines(n).Where(l => l.Trim().Length > 0).ToArray() : null;

    var (net, kind) = ModelFile.Load(model, device);
    var precision = opts.TryGetValue("precision", out var pr) ? InferencePrecisions.Parse(pr) : InferencePrecision.Float32;
    var predictor = new Predictor(net, size, device, precision)
    {
        ScoreThreshold = opts.TryGetValue("score", out var sc) ? double.Parse(sc, System.Globalization.CultureInfo.InvariantCulture) : 0.25,
        IouThreshold = opts.TryGetValue("iou", out var io) ? double.Parse(io, System.Globalization.CultureInfo.InvariantCulture) : 0.45,
    };
    Console.WriteLine($"{kind} model from {model} on {device} ({precision}), input {size}x{size}: {files.Length} images in batches of {batch}");
    var watch = Stopwatch.StartNew();
    var progress = new ConsoleProgress(watch);
    var kept = new List<Prediction>();
    foreach (var p in predictor.Predict(files, batch, progress))
    {
        string stem = Path.GetFileNameWithoutExtension(p.File);
        PredictionWriter.WriteOverlay(Path.Combine(output, "overlays", stem + ".png"), p);
        if (p.Mask is not null) { ImageFiles.WriteMaskPng(Path.Combine(output, "masks", stem + ".png"), p.Mask); p.Dispose(); }
        else kept.Add(p);
    }
    if (kind == ModelKind.Detection)
    {
        PredictionWriter.WriteCocoResults(Path.Combine(output, "detections.json"), kept, names);
        Console.WriteLine($"{kept.Sum(p => p.Labels!.shape[0])} detections -> {Path.Combine(output, "detections.json")}");
    }
    Console.WriteLine($"done in {watch.Elapsed.TotalSeconds:F1} s: overlays in {Path.Combine(output, "overlays")}" + (kind == ModelKind.Segmentation ? $", class masks in {Path.Combine(output, "masks")}" : ""));
    return 0;
}
catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or FormatException or UnauthorizedAccessException or DetSeg.Interop.StateDictMismatchException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}

// Progress<T> would print from the thread pool, out of order; this prints on the caller's thread.
sealed class ConsoleProgress(Stopwatch watch) : IProgress<(int Done, int Total)>
{
    public void Report((int Done, int Total) p) => Console.WriteLine($"  {p.Done}/{p.Total} images, {watch.Elapsed.TotalSeconds:F1} s");
}

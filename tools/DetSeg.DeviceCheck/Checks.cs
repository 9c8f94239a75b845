using DetSeg.Attention;
using DetSeg.Data;
using DetSeg.Detection;
using DetSeg.Metrics;
using DetSeg.Segmentation;
using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.DeviceCheck;

/// <summary>Each check runs a library path on the CPU and on CUDA with the same inputs and weights and compares.</summary>
static class Checks
{
    static readonly torch.Device Cpu = new(DeviceType.CPU);

    public static IEnumerable<(string Name, Func<string> Check)> All(torch.Device gpu) =>
    [
        ("tensor basics", () => Basics(gpu)),
        ("metrics", () => Metrics(gpu)),
        ("unet forward/backward", () => UNet(gpu)),
        ("trainer on cuda", () => TrainerRun(gpu)),
        ("batched nms", () => Nms(gpu)),
        ("yolov3 forward+detect", () => Yolo(gpu)),
        ("yolo loss", () => YoloLoss(gpu)),
        ("vit forward+attention", () => ViT(gpu)),
        ("mnist clutter on device", () => Clutter(gpu)),
        ("dataloader to cuda", () => Loader(gpu)),
    ];

    static string Basics(torch.Device gpu)
    {
        var a = randn(64, 64, device: gpu);
        var c = nn.functional.conv2d(randn(2, 3, 32, 32, device: gpu), randn(8, 3, 3, 3, device: gpu));
        Require(a.device_type == gpu.type && c.device_type == gpu.type, "tensors left the GPU");
        return $"matmul sum {a.matmul(a).sum().item<float>():F2}, conv {string.Join('x', c.shape)}";
    }

    static string Metrics(torch.Device gpu)
    {
        var g = new Generator(0);
        var pred = randint(0, 3, new long[] { 4, 64, 64 }, generator: g);
        var target = randint(-1, 3, new long[] { 4, 64, 64 }, generator: g);
        using var onCpu = new ClassificationMetrics(3);
        using var onGpu = new ClassificationMetrics(3);
        onCpu.Update(pred, target);
        onGpu.Update(pred.to(gpu), target.to(gpu));
        Require(onGpu.TP.device_type == gpu.type, "counts not on the GPU");
        foreach (var (k, v) in onCpu.Values())
            Require(Math.Abs(v - onGpu.Values()[k]) < 1e-12, $"{k}: cpu {v} vs cuda {onGpu.Values()[k]}");
        return $"mean_iou {onGpu.Mean(Metric.IoU):F4} identical";
    }

    static string UNet(torch.Device gpu)
    {
        manual_seed(0);
        var model = new SemanticSegmentor(3, 2, width: 16);
        model.eval();
        var x = randn(2, 3, 64, 64);
        var yCpu = model.call(x);
        model.to(gpu);
        var yGpu = model.call(x.to(gpu));
        double diff = (yGpu.cpu() - yCpu).abs().max().item<float>();
        Require(diff < 1e-3, $"forward differs by {diff}");
        model.train();
        var opt = Optim.Adam(model.parameters(), lr: 1e-3);
        var mask = randint(-1, 2, new long[] { 2, 64, 64 }, device: gpu);
        var loss = SegmentationLoss.Compute(model.call(x.to(gpu)), mask);
        opt.zero_grad(); loss.backward(); opt.step();
        Require(double.IsFinite(loss.item<float>()), "loss not finite");
        return $"max |cpu-cuda| {diff:E2}, loss {loss.item<float>():F4}";
    }

    static string TrainerRun(torch.Device gpu)
    {
        manual_seed(0);
        var model = new SemanticSegmentor(3, 2, width: 8).to(gpu);
        var opt = Optim.Adam(model.parameters(), lr: 1e-3);
        var batches = Enumerable.Range(0, 3).Select(_ => new[] { randn(2, 3, 32, 32), randint(0, 2, new long[] { 2, 32, 32 }) }).ToList();
        var trainer = SegmentationTraining.CreateTrainer(model, opt, numClasses: 2, device: gpu);
        string dir = Path.Combine(Path.GetTempPath(), "detseg-devcheck-" + Environment.ProcessId);
        var result = trainer.Train(batches, batches, new TrainOptions { Epochs = 2, Monitor = "mean_iou", HigherIsBetter = true, RunName = "devcheck", CheckpointRoot = dir, Log = TextWriter.Null });
        Require(result.History.Count == 2, $"expected 2 epochs, got {result.History.Count}");
        return $"2 epochs, best epoch {result.BestEpoch}, checkpoints in {dir}";
    }

    static string Nms(torch.Device gpu)
    {
        var g = new Generator(1);
        var xy = rand(new long[] { 2, 500, 2 }, generator: g) * 100;
        var boxes = cat(new[] { xy, xy + rand(new long[] { 2, 500, 2 }, generator: g) * 30 + 1 }, -1);
        var scores = rand(new long[] { 2, 500 }, generator: g);
        var labels = randint(0, 5, new long[] { 2, 500 }, generator: g);
        var kCpu = BatchedNms.Keep(boxes, scores, labels, 0.5);
        var kGpu = BatchedNms.Keep(boxes.to(gpu), scores.to(gpu), labels.to(gpu), 0.5);
        Require(kGpu.device_type == gpu.type, "keep mask left the GPU");
        Require(kCpu.eq(kGpu.cpu()).all().item<bool>(), "keep masks differ");
        return $"{kCpu.sum().item<long>()} of 1000 kept, identical";
    }

    static string Yolo(torch.Device gpu)
    {
        manual_seed(0);
        var model = new YOLOv3(3, 10, new ModelScale(0.25, 0.34));
        model.eval();
        var x = rand(2, 3, 128, 128);
        var (sCpu, bCpu, lCpu) = model.call(x);
        model.to(gpu);
        var (sGpu, bGpu, lGpu) = model.call(x.to(gpu));
        double diff = (bGpu.cpu() - bCpu).abs().max().item<float>();
        Require(diff < 1e-2, $"boxes differ by {diff}");
        using var det = model.Detect(x.to(gpu), scoreThreshold: 0.05);
        Require(det.Boxes.device_type == gpu.type, "detections left the GPU");
        return $"{sGpu.shape[1]} raw boxes, max |cpu-cuda| box {diff:E2}, kept per image [{string.Join(", ", det.Counts())}]";
    }

    static string YoloLoss(torch.Device gpu)
    {
        manual_seed(0);
        var model = new YOLOv3(3, 10, new ModelScale(0.25, 0.34));
        var loss = new CustomYOLOv3Loss(128, model.anchors);
        var x = rand(2, 3, 128, 128);
        var boxes = tensor(new float[] { 0.5f, 0.5f, 0.2f, 0.3f, 0.2f, 0.3f, 0.1f, 0.1f, 0, 0, 0, 0, 0.7f, 0.6f, 0.15f, 0.2f, 0, 0, 0, 0, 0, 0, 0, 0 }).view(2, 3, 4);
        var labels = tensor(new long[] { 1, 7, -1, 3, -1, -1 }).view(2, 3);
        var lCpu = loss.call(model.call(x), (boxes, labels)).item<float>();
        model.to(gpu); loss.to(gpu);
        var lGpu = loss.call(model.call(x.to(gpu)), (boxes.to(gpu), labels.to(gpu)));
        lGpu.backward();
        Require(Math.Abs(lCpu - lGpu.item<float>()) <= 1e-3 * Math.Max(1, Math.Abs(lCpu)), $"loss cpu {lCpu} vs cuda {lGpu.item<float>()}");
        return $"loss cpu {lCpu:F4} cuda {lGpu.item<float>():F4}, backward ok";
    }

    static string ViT(torch.Device gpu)
    {
        manual_seed(0);
        var model = new VisionTransformer(VisionTransformerConfig.MNIST);
        model.eval();
        var x = rand(4, 1, 28, 28);
        var yCpu = model.call(x);
        model.to(gpu);
        var (yGpu, attention) = model.forward_with_attention(x.to(gpu));
        double diff = (yGpu.cpu() - yCpu).abs().max().item<float>();
        Require(diff < 1e-3, $"logits differ by {diff}");
        Require(attention.Length > 0 && attention[^1].device_type == gpu.type, "attention maps missing or off the GPU");
        return $"max |cpu-cuda| {diff:E2}, {attention.Length} attention maps [{string.Join('x', attention[^1].shape)}]";
    }

    static MNIST? LoadMnist() => Directory.Exists(Runtime.DataPaths.Under("MNIST", "raw")) ? new MNIST(download: false) : null;

    static string Clutter(torch.Device gpu)
    {
        var mnist = LoadMnist();
        if (mnist is null) return "skipped: no MNIST under DETSEG_DATA";
        var onCpu = new MNISTClutter(mnist: mnist, device: Cpu).GetBatch([0, 1, 9595]);
        var onGpu = new MNISTClutter(mnist: mnist, device: gpu).GetBatch([0, 1, 9595]);
        Require(onGpu[0].device_type == gpu.type, "clutter images not on the GPU");
        Require(onCpu[1].eq(onGpu[1].cpu()).all().item<bool>(), "instance masks differ between cpu and cuda");
        double diff = (onCpu[0] - onGpu[0].cpu()).abs().max().item<float>();
        Require(diff < 1e-5, $"images differ by {diff}");
        return "3 images and masks identical";
    }

    static string Loader(torch.Device gpu)
    {
        var items = Enumerable.Range(0, 10).Select(i => new[] { full(new long[] { 3, 8, 8 }, (float)i), tensor((long)i) }).ToArray();
        var loader = new DataLoader(new ListDataset(items), batchSize: 4, shuffle: true, seed: 0, device: gpu, numWorkers: 2);
        long seen = 0;
        foreach (var batch in loader)
        {
            Require(batch[0].device_type == gpu.type && batch[1].device_type == gpu.type, "batch not on the GPU");
            seen += batch[1].shape[0];
        }
        Require(seen == 10, $"saw {seen} of 10 items");
        return "10 items in 3 batches on cuda";
    }

    sealed class ListDataset(Tensor[][] items) : IDataset<Tensor[]>
    {
        public int Count => items.Length;
        public Tensor[] this[int index] => items[index].Select(t => t.alias()).ToArray();
    }

    static void Require(bool ok, string message)
    {
        if (!ok) throw new InvalidOperationException(message);
    }
}

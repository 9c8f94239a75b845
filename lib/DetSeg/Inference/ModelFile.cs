using DetSeg.Detection;
using DetSeg.Interop;
using DetSeg.Segmentation;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Inference;

/// <summary>What a weights file holds.</summary>
public enum ModelKind
{
    /// <summary>A <see cref="SemanticSegmentor"/> (U-Net).</summary>
    Segmentation,
    /// <summary>A <see cref="YOLOv3"/>.</summary>
    Detection,
}

/// <summary>
/// Builds the right DetSeg model for a weights file without being told its architecture: PyTorch state_dicts
/// (.pt/.pth/.bin/.safetensors, as <see cref="PyTorchWeights.Save"/> or the reference port writes them) are recognised
/// by their keys and sized from their shapes; darknet's <c>.weights</c> is the full 80-class COCO YOLOv3.
/// </summary>
public static class ModelFile
{
    /// <summary>Loads <paramref name="path"/> into a new model in eval mode on <paramref name="device"/>.</summary>
    /// <exception cref="InvalidDataException">The keys match neither the U-Net nor YOLOv3.</exception>
    public static (nn.Module Model, ModelKind Kind) Load(string path, Device? device = null)
    {
        device ??= Runtime.Device.Default;
        nn.Module model;
        ModelKind kind;
        if (Path.GetExtension(path).Equals(".weights", StringComparison.OrdinalIgnoreCase))
        {
            var yolo = new YOLOv3(3, 80);
            DarknetWeights.Load(yolo, path);
            (model, kind) = (yolo, ModelKind.Detection);
        }
        else
        {
            var sd = PyTorchWeights.Read(path);
            try { (model, kind) = Build(path, sd); }
            finally { foreach (var t in sd.Values) t.Dispose(); }
            PyTorchWeights.Load(model, path);
        }
        model.to(device);
        model.eval();
        return (model, kind);
    }

    static (nn.Module, ModelKind) Build(string path, IReadOnlyDictionary<string, Tensor> sd)
    {
        var keys = sd.Keys.Select(k => k.StartsWith("module.", StringComparison.Ordinal) ? k[7..] : k).ToHashSet();
        Tensor Get(string k) => sd.TryGetValue(k, out var t) ? t : sd["module." + k];
        if (keys.Contains("final_layer.weight") && keys.Contains("enc_1.block.conv_block.0.weight"))
        {
            var first = Get("enc_1.block.conv_block.0.weight");              // [width x channels x 3 x 3]
            var last = Get("final_layer.weight");                             // [classes x width x 1 x 1]
            return (new SemanticSegmentor(first.shape[1], last.shape[0], first.shape[0]), ModelKind.Segmentation);
        }
        if (keys.Contains("anchors") && keys.Contains("yolo.head1.1.weight") && keys.Contains("yolo.feature1.0.0.weight"))
        {
            var anchors = Get("anchors");                                     // [3 x K x 2]
            long k = anchors.shape[1];
            long classes = Get("yolo.head1.1.weight").shape[0] / k - 5;
            var stem = Get("yolo.feature1.0.0.weight");                       // [C(32) x inChannels x 3 x 3]
            double width = stem.shape[0] / 32.0;
            // Residual units per stage, from the keys: feature1.{2,4,6}.N, feature2.8.N, feature3.10.N
            int Units(string prefix) => keys.Where(x => x.StartsWith(prefix, StringComparison.Ordinal))
                .Select(x => int.Parse(x[prefix.Length..].Split('.')[0])).DefaultIfEmpty(-1).Max() + 1;
            int[] repeats = [Units("yolo.feature1.2."), Units("yolo.feature1.4."), Units("yolo.feature1.6."), Units("yolo.feature2.8."), Units("yolo.feature3.10.")];
            int[] full = [1, 2, 8, 8, 4];
            var scale = new[] { 1.0 }.Concat(repeats.Select((r, i) => (double)r / full[i])).Distinct()
                .Select(d => new ModelScale(width, d))
                .FirstOrDefault(s => repeats.Select((r, i) => s.Repeats(full[i]) == r).All(b => b))
                ?? throw new InvalidDataException($"{path}: residual units per stage ({string.Join(", ", repeats)}) match no depth multiplier of (1, 2, 8, 8, 4).");
            return (new YOLOv3(stem.shape[1], classes, scale, anchors), ModelKind.Detection);
        }
        throw new InvalidDataException($"{path}: not a DetSeg/course U-Net (final_layer, enc_1…) or YOLOv3 (anchors, yolo.head1…) state_dict; first keys: {string.Join(", ", keys.Take(5))}.");
    }
}

using DetSeg.Detection;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Interop;

/// <summary>
/// Maps DetSeg state_dict keys to the course's PyTorch keys. The U-Net and the ViT already use the course's
/// module names; YOLOv3 names its conv blocks (<c>conv</c>, <c>bn</c>, <c>reduce</c>, <c>c1</c>…) where the course
/// uses <c>nn.Sequential</c> positions, and groups Darknet-53 under <c>backbone</c> where the course slices one
/// Sequential into <c>feature1</c> (positions 0–6), <c>feature2</c> (7–8) and <c>feature3</c> (9–10).
/// </summary>
public static class PyTorchNames
{
    /// <summary>The PyTorch key of DetSeg key <paramref name="key"/> in <paramref name="model"/>.</summary>
    public static string ToPyTorch(nn.Module model, string key)
    {
        var parts = key.Split('.');
        var output = new List<string>(parts.Length + 2);
        nn.Module module = model;
        int indexOffset = 0;
        for (int i = 0; i < parts.Length - 1; i++)
        {
            var child = module.named_children().FirstOrDefault(c => c.name == parts[i]).module;
            if (child is null)
            {
                // A module that hides its submodules (TorchSharp's MultiheadAttention keeps out_proj internal):
                // nothing below it is renamed.
                output.AddRange(parts[i..]);
                return string.Join('.', output);
            }
            string segment = parts[i];
            if (indexOffset != 0 && int.TryParse(segment, out int position)) segment = (position + indexOffset).ToString();
            (segment, indexOffset) = Rename(module, segment);
            if (segment.Length > 0) output.Add(segment);
            module = child;
        }
        output.Add(parts[^1]);
        return string.Join('.', output);
    }

    /// <summary>Every key of <paramref name="model"/>'s state_dict with its PyTorch name, in state_dict order.</summary>
    public static IReadOnlyList<(string DetSeg, string PyTorch)> Map(nn.Module model) =>
        model.state_dict().Keys.Select(k => (k, ToPyTorch(model, k))).ToList();

    // (PyTorch segment for this child, offset added to the next numeric segment)
    static (string, int) Rename(nn.Module parent, string child) => parent switch
    {
        Detection.ConvBlock => (child switch { "conv" => "0", "bn" => "1", "act" => "2", _ => child }, 0),
        ResidualUnit => (child switch { "reduce" => "net.0", "expand" => "net.1", _ => child }, 0),
        YoloBlock when child is ['c', >= '1' and <= '5'] => ((child[1] - '1').ToString(), 0),
        YoloHead => (child switch { "conv" => "0", "pred" => "1", _ => child }, 0),
        BaseYOLOv3 when child == "backbone" => ("", 0),
        // PyTorch's Sequential slice keeps the original positions: backbone[7:9] has keys 7, 8.
        Darknet53 => (child, child switch { "feature2" => 7, "feature3" => 9, _ => 0 }),
        _ => (child, 0),
    };
}

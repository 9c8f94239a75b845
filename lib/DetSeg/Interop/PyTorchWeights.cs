using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Interop;

/// <summary>The two weight-file formats PyTorch's <c>load_state_dict</c> takes.</summary>
public enum WeightsFormat
{
    /// <summary><c>torch.save(state_dict)</c> zip pickle (<c>.pt</c>, <c>.pth</c>, <c>.bin</c>).</summary>
    PyTorchPickle,
    /// <summary>safetensors (<c>.safetensors</c>).</summary>
    Safetensors,
}

/// <summary>
/// PyTorch checkpoints in and out of DetSeg models (<see cref="Segmentation.SemanticSegmentor"/>,
/// <see cref="Detection.YOLOv3"/>, <see cref="Attention.VisionTransformer"/> or any module): keys are the course's
/// PyTorch names (<see cref="PyTorchNames"/>), so a file saved here loads with <c>model.load_state_dict(torch.load(f))</c>
/// in the reference port and a reference state_dict loads here.
/// </summary>
public static class PyTorchWeights
{
    /// <summary>The format a path's extension names.</summary>
    /// <exception cref="ArgumentException">The extension is none of .pt, .pth, .bin, .safetensors.</exception>
    public static WeightsFormat FormatOf(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".safetensors" => WeightsFormat.Safetensors,
        ".pt" or ".pth" or ".bin" => WeightsFormat.PyTorchPickle,
        var e => throw new ArgumentException($"'{path}': cannot tell the weights format from extension '{e}'; use .pt/.pth/.bin (torch.save) or .safetensors.", nameof(path)),
    };

    /// <summary>Reads a state_dict file (format told by its first bytes, not its name) onto the CPU; keys as stored.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Neither format, or a damaged file.</exception>
    public static Dictionary<string, Tensor> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Weights file '{path}' does not exist.", path);
        if (Safetensors.Sniff(path)) return Safetensors.Read(path);
        return PyTorchPickle.Read(path);
    }

    /// <summary>Writes <paramref name="tensors"/> in <paramref name="format"/> (null: from the extension), atomically.</summary>
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> tensors, WeightsFormat? format = null)
    {
        if ((format ?? FormatOf(path)) == WeightsFormat.Safetensors) Safetensors.Write(path, tensors);
        else PyTorchPickle.Write(path, tensors);
    }

    /// <summary>The model's state_dict under PyTorch names (the live tensors, not copies).</summary>
    public static Dictionary<string, Tensor> ToPyTorchStateDict(nn.Module model)
    {
        var sd = model.state_dict();
        return PyTorchNames.Map(model).ToDictionary(m => m.PyTorch, m => sd[m.DetSeg]);
    }

    /// <summary>Saves <paramref name="model"/>'s weights and buffers under PyTorch names, format from the extension unless given.</summary>
    public static void Save(nn.Module model, string path, WeightsFormat? format = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        Write(path, ToPyTorchStateDict(model), format);
    }

    /// <summary>
    /// Loads a PyTorch state_dict file into <paramref name="model"/> (on whatever device it lives; dtypes are cast).
    /// A common <c>module.</c> prefix (DataParallel) is stripped.
    /// </summary>
    /// <param name="model">The model; its architecture must match the file's (same widths, classes, anchors count).</param>
    /// <param name="path">A .pt/.pth/.bin or .safetensors file.</param>
    /// <param name="strict">True (PyTorch's default): every key must match both ways. False: load the common keys, return the others.</param>
    /// <returns>Keys the model has and the file lacks, and keys the file has and the model lacks (both empty when strict).</returns>
    /// <exception cref="StateDictMismatchException">Shapes differ, or (strict) keys differ; lists the offending keys and shapes.</exception>
    public static (IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected) Load(nn.Module model, string path, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        var file = Read(path);
        try
        {
            file = StripPrefix(file, "module.");
            var map = PyTorchNames.Map(model);
            var sd = model.state_dict();
            var missing = new List<(string, long[])>();
            var shapes = new List<(string, long[], long[])>();
            var pairs = new List<(Tensor Target, Tensor Source)>();
            foreach (var (detseg, py) in map)
            {
                var target = sd[detseg];
                if (!file.TryGetValue(py, out var source)) { missing.Add((py, target.shape)); continue; }
                if (!SameShape(source.shape, target.shape)) { shapes.Add((py, source.shape, target.shape)); continue; }
                pairs.Add((target, source));
            }
            var known = map.Select(m => m.PyTorch).ToHashSet();
            var unexpected = file.Where(kv => !known.Contains(kv.Key)).Select(kv => (kv.Key, kv.Value.shape)).ToList();
            if (shapes.Count > 0 || (strict && (missing.Count > 0 || unexpected.Count > 0)))
                throw new StateDictMismatchException(path, model.GetType().Name, missing, unexpected, shapes);

            using (no_grad())
                foreach (var (target, source) in pairs)
                    target.copy_(source.reshape(target.shape)); // reshape: PyBridge reads 0-dim tensors as [1]
            return (missing.Select(m => m.Item1).ToList(), unexpected.Select(u => u.Key).ToList());
        }
        finally
        {
            foreach (var t in file.Values) t.Dispose();
        }
    }

    static bool SameShape(long[] file, long[] model) =>
        file.SequenceEqual(model) || (model.Length == 0 && file.Length == 1 && file[0] == 1);

    static Dictionary<string, Tensor> StripPrefix(Dictionary<string, Tensor> file, string prefix) =>
        file.Count > 0 && file.Keys.All(k => k.StartsWith(prefix, StringComparison.Ordinal))
            ? file.ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value)
            : file;
}

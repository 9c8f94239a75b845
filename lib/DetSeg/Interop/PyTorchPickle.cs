using System.Collections;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace DetSeg.Interop;

/// <summary>
/// <c>torch.save(model.state_dict(), "x.pt")</c> files (the zip format PyTorch writes since 1.6), read and written
/// through TorchSharp.PyBridge 1.4.4 (built against TorchSharp 0.103; checked here with 0.107 both ways against
/// PyTorch 1.13's <c>torch.load</c>, see the interop tests).
/// </summary>
/// <remarks>
/// Not supported, with a clear error: the legacy pre-1.6 format and whole pickled modules (<c>torch.save(model)</c>).
/// A checkpoint dict holding the state_dict under <c>state_dict</c>, <c>model_state_dict</c> or <c>model</c> is accepted.
/// </remarks>
public static class PyTorchPickle
{
    static readonly string[] WrapperKeys = ["state_dict", "model_state_dict", "model"];

    // PyBridge is built against TorchSharp 0.103. Console apps and tests bind it to the TorchSharp loaded here; a
    // notebook kernel loading DetSeg.dll by #r can hand it a second TorchSharp copy, whose tensors it cannot pickle.
    static void CheckSameTorchSharp()
    {
        var bridge = typeof(PyBridgeModuleExtensions).GetMethod(nameof(PyBridgeModuleExtensions.save_py), [typeof(TorchSharp.torch.nn.Module), typeof(string), typeof(IList<string>)]);
        if (bridge is null)
            throw new NotSupportedException(
                $"TorchSharp.PyBridge is bound to another copy of TorchSharp than DetSeg's ({typeof(Tensor).Assembly.Location}), as happens in some notebook kernels: "
                + ".pt/.pth files cannot be read or written in this process. Use .safetensors here (PyTorch loads it with the safetensors package), or a console app.");
    }

    /// <summary>Reads the state_dict tensors (CPU) of a <c>torch.save</c> zip file.</summary>
    /// <exception cref="InvalidDataException">Not a readable state_dict file; the message names the file and what was found.</exception>
    public static Dictionary<string, Tensor> Read(string path)
    {
        using (var fs = File.OpenRead(path))
        {
            Span<byte> magic = stackalloc byte[4];
            int n = fs.ReadAtLeast(magic, 4, throwOnEndOfStream: false);
            if (n < 4 || magic[0] != 'P' || magic[1] != 'K' || magic[2] != 3 || magic[3] != 4)
                throw new InvalidDataException($"'{path}' is not a PyTorch zip checkpoint (torch.save since PyTorch 1.6). A legacy file can be re-saved in PyTorch with torch.save(torch.load(f), f2).");
        }
        CheckSameTorchSharp();
        Hashtable table;
        try { table = PyTorchUnpickler.UnpickleStateDict(path); }
        // What PyBridge and Razorvine raise for a pickle they cannot map (a whole nn.Module, an unknown storage or
        // opcode): reported as this file's fault, with the way to save a plain state_dict.
        catch (Exception e) when (e is NotImplementedException or InvalidCastException or Razorvine.Pickle.PickleException or InvalidOperationException)
        {
            throw new InvalidDataException($"'{path}' could not be read as a state_dict ({e.GetType().Name}: {e.Message}). Save weights with torch.save(model.state_dict(), path), not the whole model.", e);
        }
        return ToStateDict(path, table);
    }

    /// <summary>Writes <paramref name="tensors"/> (copied to CPU) atomically as a file <c>torch.load</c> reads (<c>weights_only=True</c> too).</summary>
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        CheckSameTorchSharp();
        var table = new Hashtable();
        try
        {
            // Fresh contiguous CPU copies: PyBridge writes tensor.bytes with the tensor's own offset and strides.
            foreach (var (k, t) in tensors) table[k] = t.detach().cpu().contiguous().clone();
            Runtime.AtomicFile.Write(path, fs => PyTorchPickler.PickleStateDict(fs, table, leaveOpen: true));
        }
        finally
        {
            foreach (DictionaryEntry e in table) ((Tensor)e.Value!).Dispose();
        }
    }

    static Dictionary<string, Tensor> ToStateDict(string path, Hashtable table)
    {
        if (table.Count > 0 && table.Values.Cast<object?>().All(v => v is Tensor))
            return table.Cast<DictionaryEntry>().ToDictionary(e => (string)e.Key, e => (Tensor)e.Value!);
        foreach (var key in WrapperKeys)
            if (table[key] is Hashtable inner && inner.Count > 0 && inner.Values.Cast<object?>().All(v => v is Tensor))
                return inner.Cast<DictionaryEntry>().ToDictionary(e => (string)e.Key, e => (Tensor)e.Value!);
        var found = table.Cast<DictionaryEntry>().Select(e => $"{e.Key}: {e.Value?.GetType().Name ?? "None"}");
        throw new InvalidDataException($"'{path}' holds no state_dict: top-level entries {{{string.Join(", ", found.Take(10))}}} are neither all tensors nor a dict of tensors under {string.Join("/", WrapperKeys)}.");
    }
}

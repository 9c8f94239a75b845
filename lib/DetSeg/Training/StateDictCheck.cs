using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Training;

/// <summary>
/// Reads the names, dtypes and shapes out of TorchSharp's saved state (<c>Module.save</c>, <c>save_state_dict</c>)
/// without creating a tensor, so a checkpoint can be compared with a live model before anything is copied.
/// </summary>
/// <remarks>
/// <c>Module.save</c> writes: an unsigned LEB128 entry count, then per entry the key (<c>BinaryWriter.Write(string)</c>),
/// the dtype and rank as LEB128, each dimension as LEB128, and the raw element bytes. An optimizer's state begins with
/// its type name (a string), then its LEB128 parameter-group and state counts.
/// </remarks>
internal static class StateDictCheck
{
    /// <summary>One saved tensor: key, dtype, shape.</summary>
    internal sealed record Entry(string Name, ScalarType DType, long[] Shape);

    /// <summary>The entries of <c>Module.save</c> bytes, in file order.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a TorchSharp state dict.</exception>
    internal static List<Entry> ReadEntries(byte[] bytes, string what)
    {
        var entries = new List<Entry>();
        try
        {
            using var r = new BinaryReader(new MemoryStream(bytes), Encoding.UTF8);
            long count = Leb128(r);
            for (long i = 0; i < count; i++)
            {
                string name = r.ReadString();
                var dtype = (ScalarType)Leb128(r);
                long rank = Leb128(r);
                if (rank > 64) throw new InvalidDataException($"entry '{name}' claims rank {rank}");
                var shape = new long[rank];
                long numel = 1;
                for (int d = 0; d < rank; d++) numel *= shape[d] = Leb128(r);
                long size = checked(numel * ElementSize(dtype, name));
                if (size > r.BaseStream.Length - r.BaseStream.Position) throw new EndOfStreamException();
                r.BaseStream.Seek(size, SeekOrigin.Current);
                entries.Add(new Entry(name, dtype, shape));
            }
        }
        catch (Exception e) when (e is EndOfStreamException or OverflowException or InvalidDataException)
        {
            throw new InvalidDataException($"{what}: the model weights are not a readable TorchSharp state dict ({e.Message}).", e);
        }
        return entries;
    }

    /// <summary>Throws, listing every key whose presence, shape or dtype differs between the saved bytes and <paramref name="model"/>.</summary>
    /// <exception cref="ArgumentException">At least one key differs.</exception>
    internal static void ThrowOnMismatch(byte[] saved, nn.Module model, string what)
    {
        var entries = ReadEntries(saved, what);
        var live = model.state_dict();
        var lines = new List<string>();
        var seen = new HashSet<string>();
        foreach (var e in entries)
        {
            seen.Add(e.Name);
            if (!live.TryGetValue(e.Name, out var t))
                lines.Add($"  {e.Name}: checkpoint {Shape(e.Shape)} {e.DType}, not in the model");
            else if (!t.shape.SequenceEqual(e.Shape) || t.dtype != e.DType)
                lines.Add($"  {e.Name}: checkpoint {Shape(e.Shape)} {e.DType}, model {Shape(t.shape)} {t.dtype}");
        }
        foreach (var (name, t) in live)
            if (!seen.Contains(name)) lines.Add($"  {name}: model {Shape(t.shape)} {t.dtype}, not in the checkpoint");
        if (lines.Count > 0)
            throw new ArgumentException(
                $"{what} does not fit this {model.GetType().Name}: {lines.Count} of its keys differ (checkpoint {entries.Count} tensors, model {live.Count}). " +
                $"Nothing was restored.{Environment.NewLine}{string.Join(Environment.NewLine, lines)}");
    }

    /// <summary>Throws when the saved optimizer state is of another optimizer type or has other group/state counts.</summary>
    /// <exception cref="ArgumentException">Type or sizes differ.</exception>
    internal static void ThrowOnOptimizerMismatch(byte[] saved, TorchSharp.Modules.OptimizerHelper optimizer, string what)
    {
        string name;
        long groups, states;
        try
        {
            using var r = new BinaryReader(new MemoryStream(saved), Encoding.UTF8);
            (name, groups, states) = (r.ReadString(), Leb128(r), Leb128(r));
        }
        catch (Exception e) when (e is EndOfStreamException or FormatException)
        {
            throw new InvalidDataException($"{what}: the optimizer state is not readable ({e.Message}).", e);
        }
        string mine = optimizer.GetType().Name;
        if (name != mine)
            throw new ArgumentException($"{what} holds the state of a {name} optimizer, but a {mine} was given. Nothing was restored: build the same optimizer, or restore the weights only (optimizer: null).", nameof(optimizer));
        var sd = optimizer.state_dict();
        if (groups != sd.Options.Count || states != sd.State.Count)
            throw new ArgumentException($"{what} holds {name} state for {groups} parameter group(s) and {states} parameter(s), the optimizer given has {sd.Options.Count} and {sd.State.Count}. Nothing was restored.", nameof(optimizer));
    }

    static string Shape(long[] shape) => "[" + string.Join(" x ", shape) + "]";

    static long Leb128(BinaryReader r)
    {
        long result = 0;
        for (int i = 0; ; i++)
        {
            if (i > 9) throw new InvalidDataException("an over-long LEB128 number");
            long b = r.ReadByte();
            result |= (b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0) return result;
        }
    }

    static long ElementSize(ScalarType t, string name) => t switch
    {
        ScalarType.Byte or ScalarType.Int8 or ScalarType.Bool => 1,
        ScalarType.Int16 or ScalarType.Float16 or ScalarType.BFloat16 => 2,
        ScalarType.Int32 or ScalarType.Float32 => 4,
        ScalarType.Int64 or ScalarType.Float64 or ScalarType.ComplexFloat32 => 8,
        ScalarType.ComplexFloat64 => 16,
        _ => throw new InvalidDataException($"entry '{name}' has unknown dtype code {(int)t}"),
    };
}

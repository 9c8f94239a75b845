using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace DetSeg.Interop;

/// <summary>
/// Reads and writes the <a href="https://github.com/huggingface/safetensors">safetensors</a> format: an 8-byte
/// little-endian header length, a UTF-8 JSON header <c>{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {…}}</c>
/// (padded with spaces to a multiple of 8 bytes), then the raw little-endian tensor bytes, offsets counted from the end of the header.
/// </summary>
/// <remarks>
/// Written here rather than taken from TorchSharp.PyBridge 1.4.4: its writer records the header length in
/// characters instead of UTF-8 bytes (a non-ASCII key corrupts the file), neither pads nor writes metadata, and its
/// reader checks no offsets. This one validates every entry against the file and names the file and key it rejects.
/// </remarks>
public static class Safetensors
{
    const long MaxHeaderBytes = 100L << 20; // the reference implementation's limit

    static readonly (string Name, ScalarType Type)[] DTypes =
    [
        ("F64", ScalarType.Float64), ("F32", ScalarType.Float32), ("F16", ScalarType.Float16), ("BF16", ScalarType.BFloat16),
        ("I64", ScalarType.Int64), ("I32", ScalarType.Int32), ("I16", ScalarType.Int16), ("I8", ScalarType.Int8),
        ("U8", ScalarType.Byte), ("BOOL", ScalarType.Bool),
    ];

    /// <summary>Reads every tensor of a safetensors file onto the CPU, in file order.</summary>
    /// <exception cref="InvalidDataException">The file is not valid safetensors (message names the file and the entry).</exception>
    public static Dictionary<string, Tensor> Read(string path) => Read(path, out _);

    /// <summary>Reads every tensor and the <c>__metadata__</c> string map (empty when absent).</summary>
    /// <exception cref="InvalidDataException">The file is not valid safetensors (message names the file and the entry).</exception>
    public static Dictionary<string, Tensor> Read(string path, out Dictionary<string, string> metadata)
    {
        byte[] file = File.ReadAllBytes(path);
        if (file.Length < 8) throw Bad(path, $"{file.Length} bytes is too short for the 8-byte header length");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(file);
        if (headerLength > (ulong)Math.Min(MaxHeaderBytes, file.Length - 8))
            throw Bad(path, $"header length {headerLength} exceeds the file ({file.Length} bytes) or the 100 MB limit");
        int dataStart = 8 + (int)headerLength;
        long dataLength = file.Length - dataStart;

        metadata = new Dictionary<string, string>();
        var result = new Dictionary<string, Tensor>();
        try
        {
            using var doc = JsonDocument.Parse(file.AsMemory(8, (int)headerLength));
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad(path, "the header is not a JSON object");
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (entry.Name == "__metadata__")
                {
                    foreach (var m in entry.Value.EnumerateObject()) metadata[m.Name] = m.Value.GetString() ?? "";
                    continue;
                }
                var (dtype, shape, begin, end) = ParseEntry(path, entry);
                long numel = shape.Aggregate(1L, (a, b) => a * b);
                long bytes = numel * ElementSize(dtype);
                if (begin < 0 || end < begin || end > dataLength || end - begin != bytes)
                    throw Bad(path, $"tensor '{entry.Name}' [{string.Join(", ", shape)}] {dtype} needs {bytes} bytes but data_offsets are [{begin}, {end}] in a {dataLength}-byte data section");
                var t = empty(shape, dtype);
                if (bytes > 0) t.bytes = file.AsSpan(dataStart + (int)begin, (int)bytes).ToArray();
                result.Add(entry.Name, t);
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            foreach (var t in result.Values) t.Dispose();
            throw Bad(path, $"the header is not valid JSON of the expected shape ({e.Message})");
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
        return result;
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> (any device, any layout; copied to contiguous CPU memory) atomically to <paramref name="path"/>,
    /// with <paramref name="metadata"/> as the header's <c>__metadata__</c> (<c>{"format": "pt"}</c> when null, as PyTorch's writer does).
    /// </summary>
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var names = tensors.Keys.ToArray();
        var data = new byte[names.Length][];
        using var header = new MemoryStream();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            json.WriteStartObject("__metadata__");
            foreach (var (k, v) in metadata ?? new Dictionary<string, string> { ["format"] = "pt" }) json.WriteString(k, v);
            json.WriteEndObject();
            long offset = 0;
            for (int i = 0; i < names.Length; i++)
            {
                var t = tensors[names[i]];
                string dtype = DTypes.FirstOrDefault(d => d.Type == t.dtype).Name
                    ?? throw new ArgumentException($"Safetensors.Write: tensor '{names[i]}' has dtype {t.dtype}, which safetensors cannot hold.", nameof(tensors));
                using (var cpu = t.detach().cpu().contiguous()) data[i] = cpu.bytes.ToArray();
                json.WriteStartObject(names[i]);
                json.WriteString("dtype", dtype);
                json.WriteStartArray("shape");
                foreach (var s in t.shape) json.WriteNumberValue(s);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + data[i].Length);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += data[i].Length;
            }
            json.WriteEndObject();
        }
        // Pad with spaces so the data section starts 8-byte aligned (the reference writer does the same).
        int pad = (int)((8 - header.Length % 8) % 8);
        for (int i = 0; i < pad; i++) header.WriteByte((byte)' ');
        AtomicWrite.ToFile(path, fs =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
            fs.Write(len);
            header.Position = 0;
            header.CopyTo(fs);
            foreach (var d in data) fs.Write(d);
        });
    }

    static (ScalarType, long[], long, long) ParseEntry(string path, JsonProperty entry)
    {
        var v = entry.Value;
        if (v.ValueKind != JsonValueKind.Object
            || !v.TryGetProperty("dtype", out var dt) || !v.TryGetProperty("shape", out var sh) || !v.TryGetProperty("data_offsets", out var off)
            || sh.ValueKind != JsonValueKind.Array || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw Bad(path, $"entry '{entry.Name}' needs dtype, shape and two data_offsets");
        string name = dt.GetString() ?? "";
        var type = DTypes.FirstOrDefault(d => d.Name == name);
        if (type.Name is null) throw Bad(path, $"tensor '{entry.Name}' has dtype '{name}', not one of {string.Join(", ", DTypes.Select(d => d.Name))}");
        var shape = sh.EnumerateArray().Select(e => e.GetInt64()).ToArray();
        if (shape.Any(s => s < 0)) throw Bad(path, $"tensor '{entry.Name}' has a negative size in [{string.Join(", ", shape)}]");
        return (type.Type, shape, off[0].GetInt64(), off[1].GetInt64());
    }

    static long ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        _ => 1,
    };

    static InvalidDataException Bad(string path, string what) => new($"'{path}' is not a valid safetensors file: {what}.");

    /// <summary>True when the file starts like safetensors (a plausible header length followed by '{').</summary>
    internal static bool Sniff(string path)
    {
        using var fs = File.OpenRead(path);
        Span<byte> head = stackalloc byte[9];
        if (fs.ReadAtLeast(head, 9, throwOnEndOfStream: false) < 9) return false;
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(head);
        return n > 1 && n <= (ulong)Math.Min(MaxHeaderBytes, fs.Length - 8) && head[8] == (byte)'{';
    }
}

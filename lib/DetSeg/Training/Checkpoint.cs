using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Training;

/// <summary>
/// A snapshot of a training run: model weights (and BatchNorm buffers), optimizer state, the CPU random
/// generator, the epoch and its metrics. Held in memory as bytes — a real copy, unlike the course's
/// <c>model.state_dict()</c> which aliases the live weights — and saved as one file, atomically.
/// </summary>
/// <remarks>
/// File layout (<c>*.ckpt</c>): the ASCII magic <c>DETSEG-CKPT2</c>, then blocks, each an int64 length, the bytes
/// and their SHA-256 (32 bytes), checked on load so a flipped byte is never restored: a UTF-8 JSON header
/// (<see cref="Epoch"/>, <see cref="Metrics"/>, <see cref="Extra"/>, number of extra generators), TorchSharp's
/// <c>Module.save</c> bytes, TorchSharp's <c>Optimizer.save_state_dict</c> bytes, the CPU generator state, then one
/// block per extra generator (e.g. a dataset's augmentation generator), then — for a run with an average of its weights
/// (<see cref="TrainOptions.Ema"/>) — the live training weights: the model block then holds the averaged weights, which
/// <see cref="Restore"/> loads and every reader of the file sees, and only a resume needs the other. Files of the first version
/// (<c>DETSEG-CKPT1</c>: the same blocks without checksums) still load.
/// <see cref="Restore"/> checks every name, shape and dtype (and the optimizer's type and sizes) before it changes
/// anything, so a checkpoint of another model never half-overwrites the live one.
/// </remarks>
public sealed class Checkpoint : IDisposable
{
    const string Magic = "DETSEG-CKPT2";
    const string MagicV1 = "DETSEG-CKPT1";
    static readonly string[] BlockNames = ["header", "model", "optimizer", "rng"];

    /// <summary>The 0-based epoch after which the snapshot was taken.</summary>
    public int Epoch { get; }

    /// <summary>Figures by <c>"train/…"</c> and <c>"val/…"</c> name at that epoch.</summary>
    public IReadOnlyDictionary<string, double> Metrics { get; }

    /// <summary>Trainer bookkeeping (best value, epochs since best…), kept so a resume continues exactly.</summary>
    public IReadOnlyDictionary<string, double> Extra { get; }

    /// <summary>The file this checkpoint was loaded from (null when captured in memory); error messages name it.</summary>
    public string? Source { get; private init; }

    // Null once disposed: a U-Net's snapshot is hundreds of MB that a notebook kernel would otherwise keep for as long
    // as any old cell's `result` variable is reachable, i.e. for the kernel's life.
    byte[]? modelBytes, optimizerBytes, rngBytes, trainingBytes;
    byte[][]? generatorBytes;

    internal byte[] ModelBytes => modelBytes ?? throw Released();
    internal byte[] OptimizerBytes => optimizerBytes ?? throw Released();
    internal byte[] RngBytes => rngBytes ?? throw Released();
    internal byte[][] GeneratorBytes => generatorBytes ?? throw Released();

    /// <summary>Whether the checkpoint also holds the live training weights of a run with <see cref="TrainOptions.Ema"/>
    /// (its model weights are then the average).</summary>
    public bool HasTrainingWeights { get; private init; }

    /// <summary>Whether <see cref="Dispose"/> has released the snapshot's bytes (<see cref="Epoch"/>, <see cref="Metrics"/>
    /// and <see cref="Extra"/> stay readable).</summary>
    public bool IsDisposed => modelBytes is null;

    Checkpoint(int epoch, IReadOnlyDictionary<string, double> metrics, IReadOnlyDictionary<string, double> extra, byte[] model, byte[] optimizer, byte[] rng, byte[][] generators)
        => (Epoch, Metrics, Extra, modelBytes, optimizerBytes, rngBytes, generatorBytes) = (epoch, metrics, extra, model, optimizer, rng, generators);

    /// <summary>
    /// Releases the snapshot's bytes (weights and optimizer state: about three times the model's size with Adam), so
    /// that a reference kept elsewhere — a rerun notebook cell's old <c>result</c> — no longer holds them.
    /// <see cref="Restore"/> and <see cref="Save"/> then throw; the epoch and its figures stay readable.
    /// </summary>
    public void Dispose() => (modelBytes, optimizerBytes, rngBytes, generatorBytes, trainingBytes) = (null, null, null, null, null);

    ObjectDisposedException Released() =>
        new(nameof(Checkpoint), $"{Describe()} was released (its run was disposed, e.g. by a new TrainingRun of the same name): load best.ckpt from disk or train again.");

    /// <summary>Copies the current state of <paramref name="model"/>, <paramref name="optimizer"/>, the CPU generator and <paramref name="generators"/>.</summary>
    /// <param name="model">The model (holding its live training weights).</param>
    /// <param name="optimizer">The optimizer, or null.</param>
    /// <param name="epoch">The epoch just finished.</param>
    /// <param name="metrics">Its figures.</param>
    /// <param name="extra">Trainer bookkeeping.</param>
    /// <param name="generators">Extra generators to save.</param>
    /// <param name="ema">An average of <paramref name="model"/>'s weights: saved as the model's weights, the live ones beside them.</param>
    public static Checkpoint Capture(nn.Module model, optim.Optimizer? optimizer, int epoch,
        IReadOnlyDictionary<string, double> metrics, IReadOnlyDictionary<string, double>? extra = null, IReadOnlyList<Generator>? generators = null,
        ModelEma? ema = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        byte[]? training = null;
        byte[] m;
        if (ema is null) m = Bytes(w => model.save(w));
        else
        {
            training = Bytes(w => model.save(w));
            ema.Swap();
            try { m = Bytes(w => model.save(w)); }
            finally { ema.Swap(); }
        }
        byte[] o = optimizer switch
        {
            null => [],
            TorchSharp.Modules.OptimizerHelper h => Bytes(h.save_state_dict),
            _ => throw new ArgumentException($"Cannot snapshot optimizer {optimizer.GetType().Name}: it is not a TorchSharp OptimizerHelper.", nameof(optimizer)),
        };
        using var state = torch.random.get_rng_state();
        byte[] rng = state.data<byte>().ToArray();
        var gens = (generators ?? []).Select(g => { using var s = g.get_state(); return s.data<byte>().ToArray(); }).ToArray();
        return new Checkpoint(epoch, new Dictionary<string, double>(metrics), new Dictionary<string, double>(extra ?? new Dictionary<string, double>()), m, o, rng, gens)
        { trainingBytes = training, HasTrainingWeights = training is not null };
    }

    /// <summary>
    /// Loads the live training weights saved beside the averaged ones (<see cref="HasTrainingWeights"/>) into
    /// <paramref name="model"/>: what <see cref="Trainer.Resume"/> continues from. Checked first like <see cref="Restore"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The checkpoint holds no training weights (its run kept no average).</exception>
    public void RestoreTrainingWeights(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (IsDisposed) throw Released();
        if (trainingBytes is null)
            throw new InvalidOperationException($"{Describe()} holds no separate training weights: its run kept no average of its weights (TrainOptions.Ema).");
        StateDictCheck.ThrowOnMismatch(trainingBytes, model, Describe() + " (training weights)");
        using var r = new BinaryReader(new MemoryStream(trainingBytes));
        model.load(r);
    }

    /// <summary>Loads the weights into <paramref name="model"/> and, when given and saved, the optimizer state.</summary>
    /// <param name="model">The model to load the weights into (same architecture).</param>
    /// <param name="optimizer">The optimizer to load the state into; null skips it.</param>
    /// <param name="restoreRng">Also restore the CPU generator (what <see cref="Trainer.Resume"/> needs for shuffles and augmentation to repeat).</param>
    /// <param name="generators">Extra generators to restore, in the order they were captured.</param>
    /// <exception cref="ArgumentException">The checkpoint does not fit: parameter names, shapes or dtypes differ from
    /// the model's (every mismatching key is listed with both shapes), the optimizer is of another type or size, or a
    /// different number of generators was given. Nothing was changed.</exception>
    /// <exception cref="ObjectDisposedException">The checkpoint was released (<see cref="Dispose"/>). Nothing was changed.</exception>
    public void Restore(nn.Module model, optim.Optimizer? optimizer = null, bool restoreRng = false, IReadOnlyList<Generator>? generators = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        // Every check first: TorchSharp's own load copies tensor by tensor and fails halfway.
        if (generators is { Count: > 0 } && generators.Count != GeneratorBytes.Length)
            throw new ArgumentException($"{Describe()} holds {GeneratorBytes.Length} generator state(s), {generators.Count} generator(s) were given. Nothing was restored.", nameof(generators));
        StateDictCheck.ThrowOnMismatch(ModelBytes, model, Describe());
        var helper = optimizer as TorchSharp.Modules.OptimizerHelper;
        bool loadOptimizer = helper is not null && OptimizerBytes.Length > 0;
        byte[]? optimizerBefore = null;
        if (loadOptimizer)
        {
            StateDictCheck.ThrowOnOptimizerMismatch(OptimizerBytes, helper!, Describe());
            optimizerBefore = Bytes(helper!.save_state_dict);
        }

        if (loadOptimizer)
        {
            try
            {
                using var r = new BinaryReader(new MemoryStream(OptimizerBytes));
                helper!.load_state_dict(r);
            }
            catch
            {
                using var r = new BinaryReader(new MemoryStream(optimizerBefore!));   // leave the optimizer as it was
                helper!.load_state_dict(r);
                throw;
            }
        }
        using (var r = new BinaryReader(new MemoryStream(ModelBytes)))
            model.load(r);
        if (restoreRng && RngBytes.Length > 0)
        {
            using var state = torch.tensor(RngBytes, dtype: ScalarType.Byte);
            torch.random.set_rng_state(state);
        }
        if (generators is { Count: > 0 })
            for (int i = 0; i < generators.Count; i++)
            {
                using var state = torch.tensor(GeneratorBytes[i], dtype: ScalarType.Byte);
                generators[i].set_state(state);
            }
    }

    string Describe() => Source is null ? $"The checkpoint of epoch {Epoch} (in memory)" : $"Checkpoint '{Source}' (epoch {Epoch})";

    /// <summary>Writes the checkpoint to <paramref name="path"/> atomically (temp file in the same folder, then rename).</summary>
    /// <exception cref="ObjectDisposedException">The checkpoint was released (<see cref="Dispose"/>); nothing is written.</exception>
    public void Save(string path)
    {
        if (IsDisposed) throw Released();
        Runtime.AtomicFile.Write(path, fs =>
        {
            using var w = new BinaryWriter(fs, Encoding.UTF8, leaveOpen: true);
            w.Write(Encoding.ASCII.GetBytes(Magic));
            var header = JsonSerializer.SerializeToUtf8Bytes(new Header(Epoch, Finite(Metrics), Finite(Extra), GeneratorBytes.Length, trainingBytes is not null));
            foreach (var block in new[] { header, ModelBytes, OptimizerBytes, RngBytes }.Concat(GeneratorBytes).Concat(trainingBytes is null ? Array.Empty<byte[]>() : new[] { trainingBytes }))
            {
                w.Write((long)block.Length);
                w.Write(block);
                w.Write(SHA256.HashData(block));
            }
        });
    }

    /// <summary>Reads a checkpoint written by <see cref="Save"/>, verifying every block's checksum.</summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">The file is not a DetSeg checkpoint, is truncated, a block fails its
    /// checksum or the header is not valid JSON; the message names the file and the block.</exception>
    public static Checkpoint Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"No checkpoint at '{path}'.", path);
        try
        {
            using var r = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
            var magic = Encoding.ASCII.GetString(r.ReadBytes(Magic.Length));
            if (magic != Magic && magic != MagicV1)
                throw new InvalidDataException($"'{path}' is not a DetSeg checkpoint (magic '{magic}', expected '{Magic}').");
            bool checksums = magic == Magic;
            int generatorCount = 0;   // known once the header is read: names the blocks after the generators
            byte[] Block(int i)
            {
                string name = i < BlockNames.Length ? BlockNames[i] : i < BlockNames.Length + generatorCount ? $"generator {i - BlockNames.Length}" : "training weights";
                long n = r.ReadInt64();
                if (n < 0 || n > r.BaseStream.Length - r.BaseStream.Position)
                    throw new InvalidDataException($"'{path}' is truncated or corrupt (block {i}, {name}, claims {n} bytes; {r.BaseStream.Length - r.BaseStream.Position} remain).");
                var bytes = r.ReadBytes((int)n);
                if (checksums)
                {
                    var stored = r.ReadBytes(32);
                    if (stored.Length < 32) throw new EndOfStreamException();
                    if (!SHA256.HashData(bytes).AsSpan().SequenceEqual(stored))
                        throw new InvalidDataException($"'{path}' is corrupt: block {i} ({name}, {n} bytes) fails its SHA-256 checksum. Nothing was loaded; use another checkpoint.");
                }
                return bytes;
            }
            var headerBytes = Block(0);
            Header h;
            Dictionary<string, double> metrics, extra;
            try
            {
                h = JsonSerializer.Deserialize<Header>(headerBytes) ?? throw new JsonException("the header is null");
                (metrics, extra) = (Unfinite(h.Metrics), Unfinite(h.Extra));
            }
            catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
            {
                throw new InvalidDataException($"'{path}': the checkpoint header is not valid ({e.Message}).", e);
            }
            if (h.Generators < 0)
                throw new InvalidDataException($"'{path}': the checkpoint header claims {h.Generators} generators.");
            generatorCount = h.Generators;
            byte[] model = Block(1), optimizer = Block(2), rng = Block(3);
            var gens = Enumerable.Range(0, h.Generators).Select(i => Block(4 + i)).ToArray();
            byte[]? training = h.TrainingWeights ? Block(4 + h.Generators) : null;
            return new Checkpoint(h.Epoch, metrics, extra, model, optimizer, rng, gens)
            { Source = Path.GetFullPath(path), trainingBytes = training, HasTrainingWeights = training is not null };
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"'{path}' is truncated.", e);
        }
    }

    static byte[] Bytes(Action<BinaryWriter> write)
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
            write(w);
        return ms.ToArray();
    }

    // JSON has no NaN/Infinity: store them as strings so a diverged run's checkpoint still saves.
    internal static Dictionary<string, JsonElement> Finite(IReadOnlyDictionary<string, double> d) =>
        d.ToDictionary(kv => kv.Key, kv => double.IsFinite(kv.Value) ? JsonSerializer.SerializeToElement(kv.Value) : JsonSerializer.SerializeToElement(kv.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)));

    internal static Dictionary<string, double> Unfinite(Dictionary<string, JsonElement>? d) =>
        (d ?? []).ToDictionary(kv => kv.Key, kv => kv.Value.ValueKind == JsonValueKind.String
            ? double.Parse(kv.Value.GetString()!, System.Globalization.CultureInfo.InvariantCulture) : kv.Value.GetDouble());

    sealed record Header(int Epoch, Dictionary<string, JsonElement> Metrics, Dictionary<string, JsonElement> Extra, int Generators = 0, bool TrainingWeights = false);
}

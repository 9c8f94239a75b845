using System.Runtime.InteropServices;
using DetSeg.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Detection;

/// <summary>
/// Reads and writes darknet's <c>.weights</c> format (the official <c>yolov3.weights</c>) for <see cref="YOLOv3"/>.
/// </summary>
/// <remarks>
/// Layout: int32 major, minor, revision; images seen as int64 when major·10 + minor ≥ 2 (else int32);
/// then float32 values for every conv in <see cref="BaseYOLOv3.DarknetLayers"/> order: BN bias, BN weight,
/// running mean, running var, conv weight — or, for the three head output convs, bias then weight in
/// darknet's anchor-major channel order K × (4 + 1 + C), which is reordered to ours (1 + 4 + C) × K.
/// </remarks>
public static class DarknetWeights
{
    /// <summary>Where the official COCO weights are published.</summary>
    public const string Url = "https://pjreddie.com/media/files/yolov3.weights";
    /// <summary>MD5 of the official file.</summary>
    public const string Md5 = "c84e5b99d0e52cd466ae710cadf6d84c";

    /// <summary>The default location: <c>$DETSEG_DATA/weights/yolov3.weights</c>.</summary>
    public static string DefaultPath => DataPaths.Under("weights", "yolov3.weights");

    /// <summary>The file header.</summary>
    public sealed record Header(int Major, int Minor, int Revision, long ImagesSeen);

    /// <summary>The weights file if it exists at <paramref name="path"/> (default <see cref="DefaultPath"/>), else null.</summary>
    public static string? TryLocate(string? path = null)
    {
        path ??= DefaultPath;
        return File.Exists(path) ? path : null;
    }

    /// <summary>A one-paragraph message saying the weights are missing and where to put them.</summary>
    public static string MissingMessage(string? path = null) =>
        $"Pretrained YOLOv3 weights not found at {path ?? DefaultPath}. Download {Url} (md5 {Md5}, 248 MB) " +
        $"with DarknetWeights.Download() on a machine with internet access, or copy the file there.";

    /// <summary>How many float32 values a file for <paramref name="model"/> holds when its heads have <paramref name="fileClasses"/> classes.</summary>
    public static long ExpectedFloats(YOLOv3 model, long fileClasses = 80)
    {
        long total = 0, k = model.anchors.shape[1];
        foreach (var (conv, bn) in model.yolo.DarknetLayers())
            total += bn is not null ? 4 * bn.weight!.numel() + conv.weight!.numel()
                                    : (5 + fileClasses) * k * (1 + conv.weight!.shape[1]);
        return total;
    }

    /// <summary>
    /// Loads darknet weights into <paramref name="model"/>. When the model's class count differs from
    /// <paramref name="fileClasses"/> (80 for COCO), the three head output convs are skipped (transfer learning).
    /// The whole file is validated before any parameter changes: on error the model is untouched.
    /// </summary>
    /// <param name="model">The model to fill.</param>
    /// <param name="path">The <c>.weights</c> file.</param>
    /// <param name="fileClasses">Classes of the file's heads (80 for COCO).</param>
    /// <param name="upsampling">The <see cref="BaseYOLOv3.Upsampling"/> set after a successful load: nearest by default,
    /// because darknet's <c>[upsample]</c> layer, which the official weights were trained with, is nearest-neighbour
    /// (the course's bilinear blurs the coarse features the heads learned on); null keeps the model's mode.</param>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">The file is too short or too long for the model (expected and actual float counts are stated).</exception>
    public static Header Load(YOLOv3 model, string path, long fileClasses = 80, InterpolationMode? upsampling = InterpolationMode.Nearest)
    {
        if (!File.Exists(path)) throw new FileNotFoundException(MissingMessage(path), path);
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length < 16)
            throw new InvalidDataException($"{path}: {bytes.Length} bytes is too short for a darknet header (16 bytes).");
        var ints = MemoryMarshal.Cast<byte, int>(bytes.AsSpan(0, 12));
        var (major, minor, revision) = (ints[0], ints[1], ints[2]);
        bool wideSeen = major * 10 + minor >= 2 && major < 1000 && minor < 1000;
        int headerBytes = wideSeen ? 20 : 16;
        if (bytes.Length < headerBytes)
            throw new InvalidDataException($"{path}: {bytes.Length} bytes is too short for a darknet {major}.{minor} header ({headerBytes} bytes).");
        long seen = wideSeen ? BitConverter.ToInt64(bytes, 12) : BitConverter.ToInt32(bytes, 12);
        long payload = bytes.Length - headerBytes;
        long expected = ExpectedFloats(model, fileClasses);
        if (payload % 4 != 0 || payload / 4 != expected)
            throw new InvalidDataException(
                $"{path}: expected {expected:N0} float32 values after the {headerBytes}-byte header for YOLOv3(inChannels: {model.InChannels}, " +
                $"numClasses: {model.NumClasses}, scale: {model.Scale}) with {fileClasses}-class heads, but the file holds {payload / 4.0:N2} " +
                $"({(payload / 4 < expected ? "too short" : "too long")}). Nothing was loaded.");

        // First build every tensor (CPU), then copy: a shape problem can never leave a half-loaded model.
        var pending = new List<(Tensor target, Tensor value)>();
        long k = model.anchors.shape[1];
        bool loadHeads = model.NumClasses == fileClasses;
        long offset = 0;
        Tensor Next(Tensor target, long count)
        {
            var values = new float[count];
            Buffer.BlockCopy(bytes, checked((int)(headerBytes + 4 * offset)), values, 0, (int)(4 * count));
            var t = tensor(values, target.shape);
            offset += count;
            return t;
        }
        foreach (var (conv, bn) in model.yolo.DarknetLayers())
        {
            if (bn is not null)
            {
                foreach (var p in new[] { bn.bias!, bn.weight!, bn.running_mean!, bn.running_var! })
                    pending.Add((p, Next(p, p.numel())));
                pending.Add((conv.weight!, Next(conv.weight!, conv.weight!.numel())));
            }
            else if (loadHeads)
            {
                var order = HeadOrder(k, model.NumClasses);
                pending.Add((conv.bias!, Next(conv.bias!, conv.bias!.numel()).index(order)));
                pending.Add((conv.weight!, Next(conv.weight!, conv.weight!.numel()).index(order)));
            }
            else offset += (5 + fileClasses) * k * (1 + conv.weight!.shape[1]);
        }
        using (no_grad())
            foreach (var (target, value) in pending)
            {
                target.copy_(value.to(target.dtype, target.device));
                value.Dispose();
            }
        if (upsampling is { } mode) model.yolo.Upsampling = mode;
        return new Header(major, minor, revision, seen);
    }

    /// <summary>
    /// Writes <paramref name="model"/> in darknet's layout (version 0.2.0, images seen 0), heads with the
    /// model's own class count; written to a temporary file and moved into place (never a partial file).
    /// </summary>
    public static void Save(YOLOv3 model, string path)
    {
        AtomicFile.Write(path, fs =>
        {
            using var w = new BinaryWriter(fs, System.Text.Encoding.UTF8, leaveOpen: true);
            w.Write(0); w.Write(2); w.Write(0); w.Write(0L);
            long k = model.anchors.shape[1];
            void Put(Tensor t)
            {
                using var c = t.detach().to(float32).cpu().contiguous();
                w.Write(MemoryMarshal.AsBytes(c.data<float>().ToArray().AsSpan()));
            }
            using var _ = no_grad();
            foreach (var (conv, bn) in model.yolo.DarknetLayers())
            {
                if (bn is not null)
                {
                    Put(bn.bias!); Put(bn.weight!); Put(bn.running_mean!); Put(bn.running_var!); Put(conv.weight!);
                }
                else
                {
                    var inverse = HeadOrder(k, model.NumClasses).argsort(0, false);
                    Put(conv.bias!.index(inverse.to(conv.bias!.device))); Put(conv.weight!.index(inverse.to(conv.weight!.device)));
                }
            }
        });
    }

    /// <summary>
    /// For each of our head channels (field·K + anchor, fields: objectness, x, y, w, h, classes), the
    /// darknet channel (anchor·(5 + C) + field', fields': x, y, w, h, objectness, classes) it comes from.
    /// </summary>
    public static Tensor HeadOrder(long numAnchors, long numClasses)
    {
        long fields = 5 + numClasses;
        var order = new long[fields * numAnchors];
        for (long f = 0; f < fields; f++)
            for (long a = 0; a < numAnchors; a++)
            {
                long fd = f == 0 ? 4 : f <= 4 ? f - 1 : f;
                order[f * numAnchors + a] = a * fields + fd;
            }
        return tensor(order);
    }

    /// <summary>
    /// Downloads the official weights to <paramref name="path"/> (default <see cref="DefaultPath"/>) through the shared
    /// downloader: progress lines, a temporary file, the MD5 check, then an atomic move into place.
    /// </summary>
    /// <exception cref="InvalidDataException">The MD5 does not match (the partial file is deleted).</exception>
    /// <exception cref="DetSeg.Data.DataUnavailableException">The URL cannot be reached; the message says where to put the file.</exception>
    public static string Download(string? path = null, TextWriter? progress = null) =>
        DetSeg.Data.Download.EnsureFile(Path.GetFullPath(path ?? DefaultPath), [Url], Md5, progress);
}

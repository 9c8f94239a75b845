using DetSeg.Data;
using DetSeg.Data.Formats;
using DetSeg.Detection;
using InferencePrecision = DetSeg.Runtime.InferencePrecision;
using DetSeg.Segmentation;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Inference;

/// <summary>
/// Runs a trained U-Net or YOLOv3 over image files of any size, in batches on one device. Each image is brought to the
/// model's square input as in training — the U-Net's as <see cref="PFSegmentation"/> does (nearest resize of the longer
/// side, centred on grey, Penn-Fudan normalisation), YOLOv3's letterboxed (bilinear, grey 0.5) — and the result is mapped
/// back: masks cropped and resized to the original pixels, boxes shifted and scaled to them.
/// </summary>
public sealed class Predictor
{
    /// <summary>Wraps a model already loaded (see <see cref="ModelFile.Load"/>).</summary>
    /// <param name="model">A <see cref="SemanticSegmentor"/> or <see cref="YOLOv3"/>.</param>
    /// <param name="imageSize">The square side the model sees (a multiple of 16 for the U-Net, of 32 for YOLOv3).</param>
    /// <param name="device">Where to run; null: the model's current device is assumed to be the default device.</param>
    /// <param name="precision">Number format of the weights and activations; <see cref="InferencePrecision.BFloat16"/>
    /// converts <paramref name="model"/> itself (see <c>WithPrecision</c> of each model). Masks and boxes come out the same way.</param>
    public Predictor(nn.Module model, int imageSize, Device? device = null, InferencePrecision precision = InferencePrecision.Float32)
    {
        Kind = model switch
        {
            SemanticSegmentor => ModelKind.Segmentation,
            YOLOv3 => ModelKind.Detection,
            _ => throw new ArgumentException($"Predictor runs a SemanticSegmentor or a YOLOv3, not {model.GetType().Name}.", nameof(model)),
        };
        int multiple = Kind == ModelKind.Detection ? 32 : 16;
        if (imageSize < multiple || imageSize % multiple != 0)
            throw new ArgumentException($"imageSize must be a positive multiple of {multiple} for this model, got {imageSize}.", nameof(imageSize));
        Model = model;
        ImageSize = imageSize;
        Device = device ?? Runtime.Device.Default;
        Model.to(Device);
        Model.eval();
        Precision = precision;
        // BN folded into the convs: an eval-only copy, YOLOv3-416 forward ~12 % faster (A/B in one process, busy machine)
        if (Model is YOLOv3 y) y.WithPrecision(precision).Fuse();
        else ((SemanticSegmentor)Model).WithPrecision(precision);
    }

    /// <summary>The number format the model computes in (its outputs are float32 either way).</summary>
    public InferencePrecision Precision { get; }

    /// <summary>The model.</summary>
    public nn.Module Model { get; }
    /// <summary>Segmentation or detection.</summary>
    public ModelKind Kind { get; }
    /// <summary>The model's input side.</summary>
    public int ImageSize { get; }
    /// <summary>The device it runs on.</summary>
    public Device Device { get; }
    /// <summary>Detections at or below this adjusted score are dropped.</summary>
    public double ScoreThreshold { get; init; } = 0.25;
    /// <summary>Per-class NMS IoU threshold.</summary>
    public double IouThreshold { get; init; } = 0.45;
    /// <summary>At most this many detections per image.</summary>
    public int MaxDetections { get; init; } = 100;

    /// <summary>Predicts every image file, <paramref name="batchSize"/> at a time, reporting (done, total) after each batch.</summary>
    public IEnumerable<Prediction> Predict(IReadOnlyList<string> files, int batchSize = 8, IProgress<(int Done, int Total)>? progress = null)
    {
        if (batchSize < 1) throw new ArgumentException($"batchSize must be ≥ 1, got {batchSize}.", nameof(batchSize));
        for (int start = 0; start < files.Count; start += batchSize)
        {
            var batch = files.Skip(start).Take(batchSize).ToArray();
            foreach (var p in PredictBatch(batch)) yield return p;
            progress?.Report((Math.Min(start + batchSize, files.Count), files.Count));
        }
    }

    List<Prediction> PredictBatch(string[] files)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var inputs = new List<Tensor>();
        var geometry = new List<(int W, int H, float Sx, float Sy, float Left, float Top, long h, long w)>();
        foreach (var f in files)
        {
            var image = ImageFiles.ReadRgb(f);                                             // [3 x H x W] uint8
            int H = (int)image.shape[1], W = (int)image.shape[2];
            if (Kind == ModelKind.Detection)
            {
                var (canvas, sx, sy, left, top) = AnnotatedAdapters.LetterboxTensor(image, ImageSize);
                inputs.Add(canvas);
                geometry.Add((W, H, sx, sy, left, top, 0, 0));
            }
            else
            {
                var resized = PFSegmentation.ResizeLonger(image, ImageSize).to(ScalarType.Float32).div_(Runtime.Scalars.Max8Bit);
                long h = resized.shape[1], w = resized.shape[2];
                // PFSegmentation.PadCenter's own offsets (Math.Round of half the margin)
                long y0 = (long)Math.Round((ImageSize - h) * 0.5), x0 = (long)Math.Round((ImageSize - w) * 0.5);
                inputs.Add(PennFudan.Normalize(PFSegmentation.PadCenter(resized, ImageSize, 128f / 255)));
                geometry.Add((W, H, 0, 0, x0, y0, h, w));
            }
        }
        var x = stack(inputs).to(Device);                                                   // [B x 3 x S x S]
        var result = new List<Prediction>();
        if (Model is YOLOv3 yolo)
        {
            using var det = yolo.Detect(x, IouThreshold, ScoreThreshold, MaxDetections);
            for (int i = 0; i < files.Length; i++)
            {
                var g = geometry[i];
                var keep = det.Labels[i].ge(Runtime.Scalars.ZeroL);
                var boxes = MapBoxesBack(det.Boxes[i][keep].cpu(), ImageSize, g.Sx, g.Sy, g.Left, g.Top, g.W, g.H);
                result.Add(new Prediction(files[i], g.W, g.H, boxes.MoveToOuterDisposeScope(), det.Scores[i][keep].cpu().MoveToOuterDisposeScope(),
                    det.Labels[i][keep].cpu().MoveToOuterDisposeScope(), null));
            }
        }
        else
        {
            var logits = ((SemanticSegmentor)Model).call(x);                               // [B x C x S x S]
            for (int i = 0; i < files.Length; i++)
            {
                var g = geometry[i];
                var crop = logits[i].narrow(1, (long)g.Top, g.h).narrow(2, (long)g.Left, g.w).unsqueeze(0); // [1 x C x h x w]
                var up = nn.functional.interpolate(crop, [g.H, g.W], mode: InterpolationMode.Bilinear, align_corners: false);
                result.Add(new Prediction(files[i], g.W, g.H, null, null, null, up[0].argmax(0).cpu().MoveToOuterDisposeScope()));
            }
        }
        return result;
    }

    /// <summary>
    /// Boxes [N x 4] (cx, cy, w, h) as fractions of the S x S letterboxed canvas back to xyxy pixels of the W x H original
    /// (canvas = original · scale + offset), clipped to the image.
    /// </summary>
    public static Tensor MapBoxesBack(Tensor cxcywh, int canvasSize, float scaleX, float scaleY, float left, float top, int width, int height)
    {
        using var scope = NewDisposeScope();
        // Per image: Scalars held until return, explicit alphas (temporary Scalars can be freed mid-call by a GC on
        // another thread, see Runtime/Scalars). Same arithmetic as (b_x ± b_w / 2 - left) / scaleX.
        using Scalar canvas = canvasSize, l = left, t = top, sx = scaleX, sy = scaleY, w = width, h = height;
        Scalar zero = Runtime.Scalars.ZeroL, one = Runtime.Scalars.OneL, two = Runtime.Scalars.TwoL;
        var b = cxcywh.mul(canvas);
        var x1 = b[.., 0].sub(b[.., 2].div(two)).sub(l).div(sx);
        var y1 = b[.., 1].sub(b[.., 3].div(two)).sub(t).div(sy);
        var x2 = b[.., 0].add(b[.., 2].div(two), one).sub(l).div(sx);
        var y2 = b[.., 1].add(b[.., 3].div(two), one).sub(t).div(sy);
        var xyxy = stack([x1.clamp(zero, w), y1.clamp(zero, h), x2.clamp(zero, w), y2.clamp(zero, h)], 1);
        return xyxy.MoveToOuterDisposeScope();
    }
}

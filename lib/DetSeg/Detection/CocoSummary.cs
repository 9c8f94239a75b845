using System.Globalization;
using DetSeg.Metrics;

namespace DetSeg.Detection;

/// <summary>
/// The twelve numbers pycocotools' <c>COCOeval.summarize()</c> prints for boxes (its <c>stats</c>), in its order:
/// AP @[.50:.95], AP @.50, AP @.75, AP small/medium/large, AR with 1/10/100 detections, AR small/medium/large.
/// A value is −1 where COCO prints −1 (no ground truth qualifies).
/// </summary>
public sealed class CocoSummary
{
    /// <summary>One line: average precision (<see cref="IsPrecision"/>) or recall, IoU threshold (null: .50:.95), area label, maxDets and value.</summary>
    public sealed record Entry(bool IsPrecision, double? IouThreshold, string Area, int MaxDets, double Value)
    {
        /// <summary>A short name: AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl.</summary>
        public string Name => (IsPrecision ? "AP" : "AR") + (IouThreshold is { } t ? ((int)Math.Round(t * 100)).ToString(CultureInfo.InvariantCulture)
            : Area != "all" ? Area[..1] : IsPrecision ? "" : MaxDets.ToString(CultureInfo.InvariantCulture));

        /// <summary>COCO's printed line, e.g. <c> Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.504</c>.</summary>
        public override string ToString()
        {
            var ci = CultureInfo.InvariantCulture;
            string title = IsPrecision ? "Average Precision" : "Average Recall";
            string iou = IouThreshold is { } t ? t.ToString("0.00", ci) : "0.50:0.95";
            return string.Format(ci, " {0,-18} {1} @[ IoU={2,-9} | area={3,6} | maxDets={4,3} ] = {5}",
                title, IsPrecision ? "(AP)" : "(AR)", iou, Area, MaxDets, PyFormat.Fixed(Value, 3));
        }
    }

    /// <summary>The twelve entries in COCO's order.</summary>
    public IReadOnlyList<Entry> Entries { get; }

    /// <summary>Wraps <paramref name="entries"/> (COCO's twelve).</summary>
    public CocoSummary(IReadOnlyList<Entry> entries) => Entries = entries;

    /// <summary>COCO's <c>stats</c> array.</summary>
    public double[] Stats => Entries.Select(e => e.Value).ToArray();

    /// <summary>The value named <paramref name="name"/> (see <see cref="Entry.Name"/>).</summary>
    /// <exception cref="KeyNotFoundException">No entry has that name.</exception>
    public double this[string name] => Entries.FirstOrDefault(e => e.Name == name)?.Value
        ?? throw new KeyNotFoundException($"No COCO summary entry '{name}'; the names are {string.Join(", ", Entries.Select(e => e.Name))}.");

    /// <summary>The twelve lines as COCO prints them.</summary>
    public override string ToString() => string.Join('\n', Entries.Select(e => e.ToString()));
}

using System.Globalization;
using System.Text;

namespace DetSeg.Detection;

/// <summary>One row of the Darknet-53 table: a conv layer, or the residual add that closes a repeated group.</summary>
/// <param name="Repeat">How many times the group this row belongs to repeats (1 outside residual groups).</param>
/// <param name="Type"><c>Convolutional</c> or <c>Residual</c>.</param>
/// <param name="Filters">Output channels of a convolution (0 for the residual add).</param>
/// <param name="Size">Kernel and stride, e.g. <c>3x3/2</c> (empty for the residual add).</param>
/// <param name="Channels">Channels of the output.</param>
/// <param name="Height">Height of the output.</param>
/// <param name="Width">Width of the output.</param>
/// <param name="InResidualGroup">The row belongs to a group of residual units (marked with its count even when that is 1).</param>
public sealed record DarknetRow(int Repeat, string Type, long Filters, string Size, long Channels, long Height, long Width, bool InResidualGroup = false);

/// <summary>
/// The architecture table of the YOLOv3 paper (Darknet-53: type, filters, size/stride, output) read off a built
/// <see cref="Darknet53"/>, so the table shows what the code builds, at any width/depth scale and input size.
/// </summary>
public static class DarknetTable
{
    /// <summary>
    /// The rows for <paramref name="net"/> on a square <paramref name="inputSize"/> input: each conv block with its
    /// kernel, stride and output shape, and each group of residual units once, with its repeat count.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="inputSize"/> is below 1.</exception>
    public static IReadOnlyList<DarknetRow> Rows(Darknet53 net, int inputSize = 256)
    {
        ArgumentNullException.ThrowIfNull(net);
        if (inputSize < 1) throw new ArgumentException($"inputSize must be ≥ 1, got {inputSize}.", nameof(inputSize));
        var rows = new List<DarknetRow>();
        long c = 0, h = inputSize, w = inputSize;
        DarknetRow Conv(ConvBlock b, int repeat, bool group)
        {
            var weight = b.conv.weight!;                     // [out x in x k x k]
            long k = weight.shape[2], s = b.conv.stride[0], p = b.conv.padding![0];
            c = weight.shape[0];
            h = (h + 2 * p - k) / s + 1;
            w = (w + 2 * p - k) / s + 1;
            string size = s == 1 ? $"{k}x{k}" : $"{k}x{k}/{s}";
            return new DarknetRow(repeat, "Convolutional", c, size, c, h, w, group);
        }
        foreach (var stage in new[] { net.feature1, net.feature2, net.feature3 })
            foreach (var child in stage.children())
            {
                if (child is ConvBlock block) { rows.Add(Conv(block, 1, false)); continue; }
                var units = child.children().Cast<ResidualUnit>().ToList();
                // All units of a group are alike: list the first one's layers, then the add, with the group's count.
                foreach (var b in units[0].Blocks()) rows.Add(Conv(b, units.Count, true));
                rows.Add(new DarknetRow(units.Count, "Residual", 0, "", c, h, w, true));
            }
        return rows;
    }

    /// <summary>The rows as a fixed-width text table (residual groups marked <c>n x</c> on each of their rows).</summary>
    public static string Format(IReadOnlyList<DarknetRow> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var sb = new StringBuilder();
        sb.AppendLine("      type           filters  size    output");
        sb.AppendLine(new string('-', 52));
        foreach (var r in rows)
        {
            string repeat = r.InResidualGroup ? $"{r.Repeat}x" : "";
            string filters = r.Filters > 0 ? r.Filters.ToString(CultureInfo.InvariantCulture) : "";
            sb.AppendLine($"{repeat,4}  {r.Type,-14} {filters,7}  {r.Size,-6}  {r.Channels} x {r.Height} x {r.Width}");
        }
        return sb.ToString().TrimEnd();
    }
}

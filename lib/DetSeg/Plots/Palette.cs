namespace DetSeg.Plots;

/// <summary>The colours DetSeg draws series, classes and boxes with (plotly's default qualitative set).</summary>
public static class Palette
{
    static readonly string[] Colors =
        ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

    /// <summary>The colour for index <paramref name="i"/> (cycles), as <c>#rrggbb</c>.</summary>
    public static string Color(int i) => Colors[((i % Colors.Length) + Colors.Length) % Colors.Length];

    /// <summary>The colour for index <paramref name="i"/> as RGB bytes.</summary>
    public static (byte R, byte G, byte B) Rgb(int i)
    {
        string c = Color(i);
        return (Convert.ToByte(c[1..3], 16), Convert.ToByte(c[3..5], 16), Convert.ToByte(c[5..7], 16));
    }
}

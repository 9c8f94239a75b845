using System.Runtime.Loader;

namespace DetSeg.Notebooks;

/// <summary>
/// The plotly.js that Plotly.NET embeds, read from the copy beside the built library (plotly/Plotly.NET.dll),
/// so reports inline the same version the figures were made with and never fetch it.
/// </summary>
static class PlotlyScript
{
    public static string Load(string libraryFolder)
    {
        string dll = Path.Combine(libraryFolder, "plotly", "Plotly.NET.dll");
        if (!File.Exists(dll))
            throw new FileNotFoundException($"Cannot inline plotly.js: {dll} is missing (dotnet build lib/DetSeg).", dll);
        // A throw-away context: only the manifest resource is read, no Plotly.NET type is touched.
        var context = new AssemblyLoadContext("plotly.js", isCollectible: true);
        try
        {
            var asm = context.LoadFromAssemblyPath(dll);
            string name = asm.GetManifestResourceNames().Single(n => n.EndsWith(".min.js", StringComparison.Ordinal));
            using var stream = asm.GetManifestResourceStream(name)!;
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd();
        }
        finally
        {
            context.Unload();
        }
    }
}

using System.Reflection;
using System.Runtime.Loader;

namespace DetSeg.Plots;

/// <summary>
/// Loads the Plotly bridge (Plotly.NET 6 + FSharp.Core 10.1, in <c>plotly/</c> beside DetSeg.dll) into its
/// own load context, so it coexists with the FSharp.Core 10.0 of the stock notebook kernel. Only strings
/// cross the boundary, through delegates.
/// </summary>
sealed class PlotlyContext : AssemblyLoadContext
{
    const string BridgeName = "DetSeg.PlotlyBridge";
    static readonly Lazy<Api> Instance = new(Load, LazyThreadSafetyMode.ExecutionAndPublication);
    readonly string folder;

    PlotlyContext(string folder) : base("DetSeg.Plotly") => this.folder = folder;

    /// <summary>The bridge's entry points.</summary>
    internal sealed record Api(Func<string, string> FigureJson, Func<string> PlotlyJs, Func<string> PlotlyJsVersion);

    internal static Api Bridge => Instance.Value;

    /// <summary>The folder the bridge loads from.</summary>
    internal static string Folder
    {
        get
        {
            // A notebook kernel's base directory is its own, not ours: follow DetSeg.dll.
            string location = typeof(PlotlyContext).Assembly.Location;
            string dir = string.IsNullOrEmpty(location) ? AppContext.BaseDirectory : Path.GetDirectoryName(location)!;
            return Path.Combine(dir, "plotly");
        }
    }

    // Names found in plotly/ load here (Plotly.NET, FSharp.Core 10.1, ...); everything else (the BCL)
    // comes from the default context.
    protected override Assembly? Load(AssemblyName name)
    {
        string path = Path.Combine(folder, name.Name + ".dll");
        return File.Exists(path) ? LoadFromAssemblyPath(path) : null;
    }

    static Api Load()
    {
        string dir = Folder;
        string path = Path.Combine(dir, BridgeName + ".dll");
        if (!File.Exists(path))
            throw new FileNotFoundException(
                $"The Plotly bridge is missing: {path}. Build the library (dotnet build lib/DetSeg) so plotly/ sits beside DetSeg.dll.", path);
        var context = new PlotlyContext(dir);
        Type bridge = context.LoadFromAssemblyPath(path).GetType(BridgeName + ".Bridge", throwOnError: true)!;
        T Method<T>(string name) where T : Delegate =>
            bridge.GetMethod(name, BindingFlags.Public | BindingFlags.Static)?.CreateDelegate<T>()
            ?? throw new MissingMethodException(bridge.FullName, name);
        return new Api(Method<Func<string, string>>("FigureJson"), Method<Func<string>>("PlotlyJs"), Method<Func<string>>("PlotlyJsVersion"));
    }
}

namespace DetSeg.Runtime;

/// <summary>Where datasets and weights live: <c>$DETSEG_DATA</c>, else <c>&lt;cache&gt;/detseg</c> (see <see cref="Torch.CacheRoot"/>).</summary>
/// <remarks>Layout: <c>PennFudanPed/{PNGImages,PedMasks,Annotation}</c>, <c>MNIST/raw/*.gz</c>, <c>weights/</c>.</remarks>
public static class DataPaths
{
    /// <summary>The environment variable that points at the data folder.</summary>
    public const string EnvVar = "DETSEG_DATA";

    /// <summary>The data root (not created here).</summary>
    public static string Root
    {
        get
        {
            string? env = Environment.GetEnvironmentVariable(EnvVar);
            return string.IsNullOrEmpty(env) ? Torch.CacheRoot() : Path.GetFullPath(env);
        }
    }

    /// <summary>A path under <see cref="Root"/>.</summary>
    public static string Under(params string[] parts) => Path.Combine([Root, .. parts]);
}

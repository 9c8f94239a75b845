using DetSeg.Data;
using DetSeg.Runtime;

namespace DetSeg.Detection;

/// <summary>One file of the pretrained-COCO demo: where it goes under <c>DETSEG_DATA</c>, where it comes from, its md5.</summary>
/// <param name="RelativePath">The path under the data root, e.g. <c>darknet/dog.jpg</c>.</param>
/// <param name="Url">The source.</param>
/// <param name="Md5">The expected md5 (hex).</param>
/// <param name="Bytes">The size, for messages.</param>
public sealed record DarknetAsset(string RelativePath, string Url, string Md5, long Bytes);

/// <summary>
/// The files notebook 03's pretrained-COCO demo reads: darknet's official <c>yolov3.weights</c> (into
/// <c>weights/</c>) and, from darknet's repository at a pinned commit, its sample images, <c>coco.names</c> and
/// <c>yolov3.cfg</c> (into <c>darknet/</c>). Each is downloaded with progress, md5-checked, resumable and moved
/// into place atomically (<see cref="Data.Download.EnsureFile"/>); files already there with the right md5 are kept.
/// </summary>
public static class DarknetAssets
{
    /// <summary>pjreddie/darknet at the commit the md5s below were taken from (HEAD, unchanged since 2018).</summary>
    public const string RepoBase = "https://raw.githubusercontent.com/pjreddie/darknet/f6afaabcdf85f77e7aff2ec55c020c0e297c77f9/";

    /// <summary>The official COCO weights (248 MB).</summary>
    public static DarknetAsset Weights { get; } = new("weights/yolov3.weights", DarknetWeights.Url, DarknetWeights.Md5, 248_007_048);

    /// <summary>darknet's sample images, the 80 COCO class names and the network description.</summary>
    public static IReadOnlyList<DarknetAsset> Samples { get; } =
    [
        new("darknet/dog.jpg", RepoBase + "data/dog.jpg", "0efe2b8fa0609cf67d33ad9ed8112e66", 163_759),
        new("darknet/person.jpg", RepoBase + "data/person.jpg", "9cd71ee8cd7788f143ec28a184bd4794", 113_880),
        new("darknet/horses.jpg", RepoBase + "data/horses.jpg", "5aed3c9bd2754c34d870ba0fe5d924b2", 133_495),
        new("darknet/eagle.jpg", RepoBase + "data/eagle.jpg", "1915b52cadf9a8fdba8ec5535c42c0a2", 141_886),
        new("darknet/giraffe.jpg", RepoBase + "data/giraffe.jpg", "ebc4ffadb173aa8c539e1566d50c6ef4", 382_965),
        new("darknet/kite.jpg", RepoBase + "data/kite.jpg", "50281d88bd2686c32ef0f4c106ab4ab6", 1_415_684),
        new("darknet/coco.names", RepoBase + "data/coco.names", "8fc50561361f8bcf96b0177086e7616c", 625),
        new("darknet/yolov3.cfg", RepoBase + "cfg/yolov3.cfg", "b969a43a848bbf26901643b833cfb96c", 8_342),
    ];

    /// <summary>Every file of the demo: the weights, then the samples.</summary>
    public static IReadOnlyList<DarknetAsset> All => [Weights, .. Samples];

    /// <summary>Makes sure every asset is under <paramref name="root"/> (default <see cref="DataPaths.Root"/>) with its md5.</summary>
    /// <returns>The full paths, in the order of <paramref name="assets"/> (default <see cref="All"/>).</returns>
    /// <exception cref="InvalidDataException">A download's md5 differs (nothing is put in place for it).</exception>
    /// <exception cref="DataUnavailableException">A source cannot be reached; the message says where to put the file.</exception>
    public static IReadOnlyList<string> Download(string? root = null, IReadOnlyList<DarknetAsset>? assets = null, TextWriter? progress = null)
    {
        root ??= DataPaths.Root;
        return (assets ?? All)
            .Select(a => Data.Download.EnsureFile(Path.Combine(root, a.RelativePath), [a.Url], a.Md5, progress))
            .ToList();
    }

    /// <summary>
    /// <see cref="Download"/> for a notebook: true when every file is in place; otherwise writes why not (offline,
    /// a bad download) to <paramref name="log"/> and returns false, so the demo can be skipped rather than fail.
    /// </summary>
    public static bool TryDownload(TextWriter? log = null, string? root = null, IReadOnlyList<DarknetAsset>? assets = null)
    {
        log ??= Console.Out;
        try
        {
            Download(root, assets, log);
            return true;
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            log.WriteLine($"Pretrained files not downloaded: {e.Message}");
            return false;
        }
    }
}

using System.Text.RegularExpressions;

namespace DetSeg.Notebooks;

/// <summary>
/// Makes markdown figures travel with the report: every <c>&lt;img src="relative/path"&gt;</c> whose file exists
/// under the notebook's folder (e.g. <c>../assets/unet.svg</c>) becomes a data URI, so the HTML report stays
/// one self-contained file that opens offline. Absolute URLs and data URIs are left alone; a missing file is
/// left as it is, and the page's self-check then counts it as an image that did not load.
/// </summary>
static partial class LocalImages
{
    static readonly Dictionary<string, string> Mime = new(StringComparer.OrdinalIgnoreCase)
    {
        [".svg"] = "image/svg+xml", [".png"] = "image/png", [".jpg"] = "image/jpeg", [".jpeg"] = "image/jpeg", [".gif"] = "image/gif",
    };

    [GeneratedRegex("""(<img\b[^>]*?\bsrc=")([^"]+)(")""", RegexOptions.IgnoreCase)]
    private static partial Regex ImgSrc();

    /// <summary>Inlines the local images of <paramref name="html"/>, resolving paths against <paramref name="baseDirectory"/>.</summary>
    public static string Inline(string html, string baseDirectory) => ImgSrc().Replace(html, m =>
    {
        string src = System.Net.WebUtility.HtmlDecode(m.Groups[2].Value);
        if (src.Contains(':') || src.StartsWith('/') || !Mime.TryGetValue(Path.GetExtension(src), out var mime)) return m.Value;
        string file = Path.GetFullPath(Path.Combine(baseDirectory, Uri.UnescapeDataString(src)));
        if (!File.Exists(file)) return m.Value;
        return $"{m.Groups[1].Value}data:{mime};base64,{Convert.ToBase64String(File.ReadAllBytes(file))}{m.Groups[3].Value}";
    });
}

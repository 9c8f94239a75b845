using DetSeg.Notebooks;

namespace DetSeg.Notebooks.Tests;

public class LocalImagesTests
{
    [Fact]
    public void Inline_TurnsRelativeSvgIntoADataUri_AndLeavesOthersAlone()
    {
        string root = Path.Combine(Path.GetTempPath(), "detseg-notebooks-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(root, "notebooks"));
        Directory.CreateDirectory(Path.Combine(root, "assets"));
        const string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"4\" height=\"4\"/>";
        File.WriteAllText(Path.Combine(root, "assets", "box.svg"), svg);
        string html = "<p><img src=\"../assets/box.svg\" alt=\"a box\"></p>" +
                      "<img src=\"https://example.org/x.svg\"><img src=\"../assets/missing.svg\"><img src=\"data:image/png;base64,AA==\">";

        string result = LocalImages.Inline(html, Path.Combine(root, "notebooks"));

        string expected = "data:image/svg+xml;base64," + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(svg));
        Assert.Contains($"<img src=\"{expected}\" alt=\"a box\">", result);
        Assert.Contains("<img src=\"https://example.org/x.svg\">", result);       // not ours to fetch: the page check reports it
        Assert.Contains("<img src=\"../assets/missing.svg\">", result);           // left visible as broken, counted as not loaded
        Assert.Contains("<img src=\"data:image/png;base64,AA==\">", result);
        Assert.DoesNotContain("../assets/box.svg", result);
    }
}

using DetSeg.Data.Formats;

namespace DetSeg.Tests.Data.Formats;

public class YoloDatasetTests
{
    static string Folder(string labels, string yaml = "names: [person, bike]\n")
    {
        string root = TestPaths.NewTempDir();
        Directory.CreateDirectory(Path.Combine(root, "images"));
        Directory.CreateDirectory(Path.Combine(root, "labels"));
        File.WriteAllBytes(Path.Combine(root, "images", "x.png"), DetSeg.Tests.Data.Fixtures.RgbPng(10, 8));
        File.WriteAllText(Path.Combine(root, "labels", "x.txt"), labels);
        File.WriteAllText(Path.Combine(root, "data.yaml"), yaml);
        return root;
    }

    [Fact]
    public void Reads_NormalisedCentreBoxes_IntoPixels()
    {
        var ds = new YoloDataset(Folder("1 0.5 0.5 0.4 0.5\n\n0 0.1 0.125 0.2 0.25\n"));
        using var x = ds[0];
        // 10 x 8 image: (0.5, 0.5, 0.4, 0.5) -> x 3..7, y 2..6; (0.1, 0.125, 0.2, 0.25) -> x 0..2, y 0..2
        Assert.Equal(new float[] { 3, 2, 7, 6, 0, 0, 2, 2 }, x.Boxes.data<float>().ToArray());
        Assert.Equal(new long[] { 1, 0 }, x.Labels.data<long>().ToArray());
        Assert.Null(x.InstanceMask);
    }

    [Theory]
    [InlineData("names: [a, b]", new[] { "a", "b" })]
    [InlineData("nc: 2\nnames:\n  - 'a'\n  - b  # second\n", new[] { "a", "b" })]
    [InlineData("names:\n  0: person\n  1: \"bi cycle\"\ntrain: x\n", new[] { "person", "bi cycle" })]
    public void Names_ReadInTheThreeYamlForms(string yaml, string[] names)
    {
        string root = Folder("", yaml);
        Assert.Equal(names, YoloDataset.ReadNames(Path.Combine(root, "data.yaml")));
    }

    [Theory]
    [InlineData("2 0.5 0.5 0.1 0.1", "class '2' is not one of the 2 names")]
    [InlineData("0 0.5 0.5 0.1", "expected 'class cx cy w h', got 4 fields")]
    [InlineData("0 1.5 0.5 0.1 0.1", "'1.5' is not a number in [0, 1]")]
    [InlineData("0 0.95 0.5 0.2 0.1", "reaches outside the image")]
    public void BadLabel_NamesFileAndLine(string line, string message)
    {
        string root = Folder("0 0.5 0.5 0.1 0.1\n" + line + "\n");
        var ex = Assert.Throws<InvalidDataException>(() => new YoloDataset(root));
        Assert.Contains(Path.Combine(root, "labels", "x.txt") + " line 2", ex.Message);
        Assert.Contains(message, ex.Message);
    }
}

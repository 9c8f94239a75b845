using DetSeg.Data.Formats;

namespace DetSeg.Tests.Data.Formats;

public class PennFudanAnnotationsTests(Xunit.Abstractions.ITestOutputHelper log)
{
    [Fact]
    public void ReadBoxes_ConvertsOneBasedInclusiveCorners()
    {
        string path = Path.Combine(TestPaths.NewTempDir(), "a.txt");
        File.WriteAllText(path, """
            # Top left pixel co-ordinates : (1, 1)
            Bounding box for object 1 "PASpersonWalking" (Xmin, Ymin) - (Xmax, Ymax) : (160, 182) - (302, 431)
            Bounding box for object 2 "PASpersonWalking" (Xmin, Ymin) - (Xmax, Ymax) : (1, 1) - (1, 2)
            """);
        Assert.Equal(new float[] { 159, 181, 302, 431, 0, 0, 1, 2 }, PennFudanAnnotations.ReadBoxes(path).data<float>().ToArray());
    }

    [SkippableFact]
    public void AuthorsBoxes_AgreeWithMaskBoxes()
    {
        Skip.If(TestPaths.SharedData is null, "needs Penn-Fudan under ../shared/data (or DETSEG_DATA)");
        var rows = PennFudanAnnotations.CompareWithMasks(Path.Combine(TestPaths.SharedData!, "PennFudanPed"));
        Assert.Equal(170, rows.Count);
        double mean = rows.Average(r => r.MeanIoU);
        var worst = rows.MinBy(r => r.MeanIoU);
        log.WriteLine($"Penn-Fudan annotation vs mask boxes: {rows.Sum(r => r.Objects)} objects, mean per-image IoU {mean:F4}, worst {worst.Name} {worst.MeanIoU:F4}");
        Assert.True(mean > 0.95, $"mean per-image IoU {mean:F4}");
    }
}

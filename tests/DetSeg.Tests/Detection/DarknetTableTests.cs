using DetSeg.Detection;

namespace DetSeg.Tests.Detection;

public class DarknetTableTests
{
    // Golden: Table 1 of the YOLOv3 paper (Redmon & Farhadi 2018), Darknet-53 on a 256x256 input, without its
    // classifier rows (avgpool, connected, softmax), which YOLOv3 does not use.
    static readonly (int Repeat, string Type, long Filters, string Size, long Side)[] Paper =
    [
        (1, "Convolutional", 32, "3x3", 256),
        (1, "Convolutional", 64, "3x3/2", 128),
        (1, "Convolutional", 32, "1x1", 128), (1, "Convolutional", 64, "3x3", 128), (1, "Residual", 0, "", 128),
        (1, "Convolutional", 128, "3x3/2", 64),
        (2, "Convolutional", 64, "1x1", 64), (2, "Convolutional", 128, "3x3", 64), (2, "Residual", 0, "", 64),
        (1, "Convolutional", 256, "3x3/2", 32),
        (8, "Convolutional", 128, "1x1", 32), (8, "Convolutional", 256, "3x3", 32), (8, "Residual", 0, "", 32),
        (1, "Convolutional", 512, "3x3/2", 16),
        (8, "Convolutional", 256, "1x1", 16), (8, "Convolutional", 512, "3x3", 16), (8, "Residual", 0, "", 16),
        (1, "Convolutional", 1024, "3x3/2", 8),
        (4, "Convolutional", 512, "1x1", 8), (4, "Convolutional", 1024, "3x3", 8), (4, "Residual", 0, "", 8),
    ];

    [Fact]
    public void Rows_OfTheFullModel_AreThePapersTable()
    {
        var rows = DarknetTable.Rows(new Darknet53(3), 256);
        Assert.Equal(Paper.Length, rows.Count);
        for (int i = 0; i < Paper.Length; i++)
        {
            var (repeat, type, filters, size, side) = Paper[i];
            Assert.Equal((repeat, type, filters, size, side, side), (rows[i].Repeat, rows[i].Type, rows[i].Filters, rows[i].Size, rows[i].Height, rows[i].Width));
        }
        // 52 convolutions (+ the classifier's connected layer = 53): the stem, 5 downsamplers, 2 per residual unit.
        Assert.Equal(52, rows.Where(r => r.Type == "Convolutional").Sum(r => r.Repeat));
        string text = DarknetTable.Format(rows);
        Assert.Contains("  8x  Convolutional      256  3x3     256 x 32 x 32", text);
        Assert.Contains("  1x  Convolutional       32  1x1     32 x 128 x 128", text);   // a group of one unit is marked too
        Assert.Contains("\n      Convolutional       64  3x3/2   64 x 128 x 128", text);  // the downsampling conv is not
        Assert.Equal(15, rows.Count(r => r.InResidualGroup));
    }

    [Fact]
    public void Rows_FollowTheScaleAndTheInputSize()
    {
        // Width x0.25, depth x0.25 (the cpu recipe): channels 8..256, groups of 1, 1, 2, 2, 1 units; 128 px input.
        var rows = DarknetTable.Rows(new Darknet53(3, new ModelScale(0.25, 0.25)), 128);
        Assert.Equal(new[] { 1, 1, 2, 2, 1 }, rows.Where(r => r.Type == "Residual").Select(r => r.Repeat));
        Assert.Equal((256L, 4L, 4L), (rows[^1].Channels, rows[^1].Height, rows[^1].Width));
        Assert.Equal((8L, 128L), (rows[0].Filters, rows[0].Height));
        Assert.Throws<ArgumentException>(() => DarknetTable.Rows(new Darknet53(3), 0));
    }
}

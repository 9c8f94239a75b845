using DetSeg.Data.Formats;
using static TorchSharp.torch;

namespace DetSeg.Tests.Data.Formats;

/// <summary>COCO's RLE and polygons; goldens worked by hand from pycocotools' published algorithm (maskApi.c).</summary>
public class CocoMasksTests
{
    // [[0,1],[1,1],[0,0]]: column 0 top-down is 0,1,0 and column 1 is 1,1,0, so the runs are 1,1,1,2,1.
    static Tensor Example => tensor(new bool[,] { { false, true }, { true, true }, { false, false } });

    [Fact]
    public void Rle_RunsColumnByColumn_StartingWithBackground()
    {
        Assert.Equal(new long[] { 1, 1, 1, 2, 1 }, CocoMasks.EncodeRle(Example));
        Assert.True(CocoMasks.DecodeRle([1, 1, 1, 2, 1], 3, 2).Same(Example));
        Assert.Equal(new long[] { 0, 2 }, CocoMasks.EncodeRle(ones(1, 2, ScalarType.Bool))); // starts with an empty background run
        Assert.Throws<ArgumentException>(() => CocoMasks.DecodeRle([1, 1], 3, 2));
    }

    [Fact]
    public void CompressedCounts_DecodeAsPycocotools()
    {
        // rleToString: counts after the second are stored minus the count two before; 5-bit groups + 48, 0x20 = more, 0x10 = sign.
        Assert.Equal(new long[] { 1, 1, 1, 2, 1 }, CocoMasks.DecompressCounts("11110"));
        Assert.Equal(new long[] { 5, 3, 2, 1 }, CocoMasks.DecompressCounts("532N"));  // 1 - 3 = -2 -> 30 + 48 = 'N'
        Assert.Equal(new long[] { 40 }, CocoMasks.DecompressCounts("X1"));         // 40 = 8 + 1·32: (8|0x20)+48 = 'X', 1+48 = '1'
    }

    [Fact]
    public void Polygon_FillsPixelsWhoseCentreIsInside()
    {
        // rectangle x 1..4, y 1..3: centres x+0.5 in (1, 4) -> columns 1..3, y+0.5 in (1, 3) -> rows 1..2
        var m = CocoMasks.FillPolygons([[1, 1, 4, 1, 4, 3, 1, 3]], 5, 6);
        var expected = zeros(5, 6, ScalarType.Bool);
        expected[TensorIndex.Slice(1, 3), TensorIndex.Slice(1, 4)] = tensor(true);
        Assert.True(m.Same(expected));
        // a triangle over the whole 4 x 4 image covers the pixels below the diagonal x = y (centres strictly inside)
        var t = CocoMasks.FillPolygons([[0, 0, 4, 4, 0, 4]], 4, 4);
        Assert.Equal(6, t.sum().item<long>());
    }
}

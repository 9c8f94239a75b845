using DetSeg.Attention;
using static TorchSharp.torch;

namespace DetSeg.Tests.Attention;

public class PatchesTests
{
    [Fact]
    public void ImgToPatch_CutsRowMajorPatches_ChannelMajorVectors()
    {
        // Hand computation: a 2-channel 4 x 4 image holding 0..31, patch 2. Channel 0 is 0..15 and
        // channel 1 is 16..31 row by row, so patch 0 (top left) = [0,1,4,5 | 16,17,20,21], patch 1 (top right)
        // = [2,3,6,7 | 18,19,22,23], patch 2 (bottom left) = [8,9,12,13 | ...].
        var x = arange(32, dtype: float32).reshape(1, 2, 4, 4);
        var patches = Patches.ImgToPatch(x, 2);
        Assert.Equal(new long[] { 1, 4, 8 }, patches.shape);
        Assert.Equal(new float[] { 0, 1, 4, 5, 16, 17, 20, 21 }, patches[0, 0].data<float>().ToArray());
        Assert.Equal(new float[] { 2, 3, 6, 7, 18, 19, 22, 23 }, patches[0, 1].data<float>().ToArray());
        Assert.Equal(new float[] { 8, 9, 12, 13, 24, 25, 28, 29 }, patches[0, 2].data<float>().ToArray());
        Assert.Equal(new float[] { 10, 11, 14, 15, 26, 27, 30, 31 }, patches[0, 3].data<float>().ToArray());
    }

    [Fact]
    public void ImgToPatch_Unflattened_KeepsPatchImages()
    {
        var x = randn(3, 1, 28, 28);
        var patches = Patches.ImgToPatch(x, 7, flattenChannels: false);
        Assert.Equal(new long[] { 3, 16, 1, 7, 7 }, patches.shape);
        // Patch 5 = grid row 1, column 1: pixels 7..13 x 7..13.
        Assert.True(patches[2, 5].equal(x[2, .., 7..14, 7..14]).all().item<bool>());
    }

    [Fact]
    public void ImgToPatch_RejectsSizesThatDoNotDivide()
    {
        var e = Assert.Throws<ArgumentException>(() => Patches.ImgToPatch(zeros(1, 1, 28, 28), 5));
        Assert.Contains("28 x 28", e.Message);
        Assert.Throws<ArgumentException>(() => Patches.ImgToPatch(zeros(28, 28), 7));
    }
}

using DetSeg.Detection;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Detection;

public class AnchorsTests
{
    [Fact]
    public void Lattice_FromCourseStats_GivesCourseMnistClutterAnchors()
    {
        var (std, mean) = Anchors.CourseBoxStats();
        var px = Anchors.ToPixels(Anchors.Lattice(std, mean), 128);
        // the course's printed mc_anchors (baseline.json facts.mc_anchors)
        var expected = new long[] { 16, 27, 21, 23, 26, 20, 11, 23, 16, 20, 21, 16, 6, 20, 11, 16, 16, 12 };
        Assert.Equal(new long[] { 3, 3, 2 }, px.shape);
        Assert.Equal(expected, px.data<long>().ToArray());
    }

    [Fact]
    public void KMeans_RecoversNineTightClusters_LargestFirst()
    {
        var gen = new Generator(1);
        var centres = new float[,] { { .05f, .05f }, { .05f, .15f }, { .15f, .05f }, { .1f, .1f }, { .2f, .3f }, { .3f, .2f }, { .25f, .25f }, { .4f, .4f }, { .5f, .3f } };
        var c = tensor(centres);
        var wh = (c.repeat_interleave(50, 0) * (1 + 0.02 * randn(450, 2, generator: gen))).clamp_min(0.01);
        var anchors = Anchors.KMeans(wh, 9, seed: 3);
        Assert.Equal(new long[] { 3, 3, 2 }, anchors.shape);
        var areas = (anchors[.., .., 0] * anchors[.., .., 1]).flatten();
        Assert.True((areas[..^1] >= areas[1..]).all().item<bool>());
        // every true centre has a k-means anchor within 5 %
        var best = BoxOps.SizeIou(c, anchors.view(-1, 2)).amax(new long[] { -1 });
        Assert.True((best > 0.9).all().item<bool>(), best.ToString(TorchSharp.TensorStringStyle.Julia));
        Assert.True(Anchors.MeanBestIou(wh, anchors) > 0.9);
        Assert.Throws<ArgumentException>(() => Anchors.KMeans(wh, 8));
    }

    [Fact]
    public void BoxSizes_KeepsOnlyValidBoxes()
    {
        var batch = new[] { zeros(2, 1, 8, 8), tensor(new float[,,] { { { .5f, .5f, .1f, .2f }, { 0, 0, 0, 0 } }, { { .5f, .5f, .3f, .4f }, { .2f, .2f, .05f, .06f } } }), tensor(new long[,] { { 3, -1 }, { 1, 2 } }) };
        var wh = Anchors.BoxSizes(new[] { batch });
        Assert.Equal(new long[] { 3, 2 }, wh.shape);
        Assert.Equal(new[] { .1f, .2f, .3f, .4f, .05f, .06f }, wh.data<float>().ToArray());
    }
}

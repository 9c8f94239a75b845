using DetSeg.Segmentation;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Segmentation;

public class ModelTests
{
    static long Params(nn.Module m) => m.parameters().Sum(p => p.numel());

    [Fact]
    public void SimpleSemanticSegmentor_256_Gives253_AsTheCourse()
    {
        // baseline.json facts.simple_segmentor_out_shape_256 = [1, 2, 253, 253]; param_counts.simple_semantic_segmentor_3_2 = 516386.
        var m = new SimpleSemanticSegmentor(3, 2);
        using var _ = no_grad();
        using var y = m.call(zeros(1, 3, 256, 256));
        Assert.Equal(new long[] { 1, 2, 253, 253 }, y.shape);
        Assert.Equal(516386, Params(m));
    }

    [Fact]
    public void SemanticSegmentor_ParameterCounts_MatchTheCourse()
    {
        // baseline.json param_counts: unet_SemanticSegmentor_3_2 = 31043586, unet_div4_16_256 = 1944066.
        Assert.Equal(31043586, Params(new SemanticSegmentor(3, 2)));
        Assert.Equal(1944066, Params(new SemanticSegmentor(3, 2, width: 16)));
    }

    [Fact]
    public void SemanticSegmentor_StateDictKeys_FollowTheCourseNames()
    {
        var keys = new SemanticSegmentor(3, 2, width: 2).state_dict().Keys.ToList();
        Assert.Contains("enc_1.block.conv_block.0.weight", keys);
        Assert.Contains("dec_4.conv_trasp_2d.weight", keys);
        Assert.Contains("bottleneck.conv_block.4.running_mean", keys);
        Assert.Contains("final_layer.bias", keys);
    }

    [Theory]
    [InlineData(32, 32)]
    [InlineData(37, 45)]
    [InlineData(16, 17)]
    public void SemanticSegmentor_OutputHasTheInputSize_EvenForSidesNotMultipleOf16(int h, int w)
    {
        var m = new SemanticSegmentor(3, 2, width: 2);
        m.eval();
        using var _ = no_grad();
        using var y = m.call(randn(2, 3, h, w));
        Assert.Equal(new long[] { 2, 2, h, w }, y.shape);
    }

    [Fact]
    public void SemanticSegmentor_TooSmallInput_SaysWhy()
    {
        var m = new SemanticSegmentor(3, 2, width: 2);
        var e = Assert.Throws<ArgumentException>(() => m.call(zeros(1, 3, 8, 8)));
        Assert.Contains("[1, 3, 8, 8]", e.Message);
    }

    [Fact]
    public void SemanticSegmentor_WrongChannelCount_NamesTheShape()
    {
        // A grayscale image into the RGB U-Net used to fail deep in libtorch with no shape of the input.
        var m = new SemanticSegmentor(3, 2, width: 2);
        var e = Assert.Throws<ArgumentException>(() => m.call(zeros(2, 1, 32, 32)));
        Assert.Contains("[2, 1, 32, 32]", e.Message);
        Assert.Contains("3-channel", e.Message);
    }

    [Fact]
    public void SemanticSegmentor_Backward_ReachesTheFirstLayer()
    {
        var m = new SemanticSegmentor(1, 3, width: 2);
        m.call(randn(2, 1, 16, 16)).sum().backward();
        var g = m.named_parameters().First(p => p.name == "enc_1.block.conv_block.0.weight").parameter.grad;
        Assert.NotNull(g);
        Assert.True(g!.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void LinearToConv2d_GivesTheSameOutputsAsTheLinear()
    {
        // The course's check: x [10 x 2 x 3 x 5] float64, Linear(30, 7); allclose(lin(x.flatten(1)), conv(x).flatten(1)).
        torch.manual_seed(0);
        var x = randn(10, 2, 3, 5, dtype: ScalarType.Float64);
        var lin = nn.Linear(30, 7, dtype: ScalarType.Float64);
        var conv = FCN.LinearToConv2d(lin, 3, 5);
        Assert.Equal(new long[] { 7, 2, 3, 5 }, conv.weight!.shape);
        using var _ = no_grad();
        var diff = (lin.call(x.flatten(1)) - conv.call(x).flatten(1)).abs().max().item<double>();
        Assert.True(diff < 1e-6, $"max |linear - conv| = {diff}");
        // On a larger map the conv slides: 3x5 kernel on 4x7 gives a 2x3 map of scores.
        Assert.Equal(new long[] { 10, 7, 2, 3 }, conv.call(randn(10, 2, 4, 7, dtype: ScalarType.Float64)).shape);
    }

    [Fact]
    public void LinearToConv2d_BadGeometry_Throws()
    {
        var e = Assert.Throws<ArgumentException>(() => FCN.LinearToConv2d(nn.Linear(31, 7), 3, 5));
        Assert.Contains("31", e.Message);
    }
}

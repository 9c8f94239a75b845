using DetSeg.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Runtime;

public class RuntimeTests
{
    [Fact]
    public void Torch_LoadsAndComputes()
    {
        Torch.EnsureLoaded();
        using var x = arange(6, dtype: ScalarType.Float32).reshape(2, 3);
        Assert.Equal(15f, x.sum().item<float>());
        Assert.DoesNotContain("not loaded", Torch.LoadReport);
    }

    [Fact]
    public void Device_Choose_ParsesCpuAndRejectsNonsense()
    {
        Assert.Equal(DeviceType.CPU, DetSeg.Runtime.Device.Choose("cpu").type);
        Assert.Equal(DeviceType.CPU, DetSeg.Runtime.Device.Choose(" CPU ").type);
        var e = Assert.Throws<ArgumentException>(() => DetSeg.Runtime.Device.Choose("tpu"));
        Assert.Contains("DETSEG_DEVICE='tpu'", e.Message);
        Assert.Throws<ArgumentException>(() => DetSeg.Runtime.Device.Choose("cuda:x"));
    }

    [SkippableFact]
    public void Device_Choose_CudaWithoutCuda_SaysSo()
    {
        Skip.If(cuda.is_available(), "this host has CUDA");
        var e = Assert.Throws<ArgumentException>(() => DetSeg.Runtime.Device.Choose("cuda"));
        Assert.Contains("no CUDA device", e.Message);
    }

    [Theory]
    [InlineData("smoke", ProfileKind.Smoke)]
    [InlineData("CPU", ProfileKind.Cpu)]
    [InlineData("gpu", ProfileKind.Gpu)]
    public void Profile_Parse_KnownNames(string name, ProfileKind kind) => Assert.Equal(kind, Profile.Parse(name));

    [Fact]
    public void Profile_Parse_Default_FollowsDevice()
    {
        Assert.Equal(cuda.is_available() ? ProfileKind.Gpu : ProfileKind.Cpu, Profile.Parse(null));
        Assert.Throws<ArgumentException>(() => Profile.Parse("fast"));
    }

    [Fact]
    public void Profile_Pick_ReturnsTheProfilesValue()
    {
        Assert.Equal(1, new Profile(ProfileKind.Smoke).Pick(1, 2, 3));
        Assert.Equal(2, new Profile(ProfileKind.Cpu).Pick(1, 2, 3));
        Assert.Equal(3, new Profile(ProfileKind.Gpu).Pick(1, 2, 3));
    }
}

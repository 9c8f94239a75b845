using System.Runtime.InteropServices;
using DetSeg.Runtime;
using static TorchSharp.torch;

namespace DetSeg.Tests.Runtime;

public class NativeHeapTests
{
    [DllImport("libc")] static extern int getrusage(int who, long[] usage);

    /// <summary>Minor page faults of the whole process so far (<c>ru_minflt</c>, the 9th field of <c>struct rusage</c>).</summary>
    static long MinorFaults()
    {
        var usage = new long[18];
        Assert.Equal(0, getrusage(0, usage));
        return usage[8];
    }

    static bool HugePagesOff() =>
        File.Exists("/sys/kernel/mm/transparent_hugepage/enabled")
        && File.ReadAllText("/sys/kernel/mm/transparent_hugepage/enabled").Contains("[never]", StringComparison.Ordinal);

    [SkippableFact]
    public void LargeTensors_StartOnAPageBoundary()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "the heap policy is glibc's and libtorch's Linux allocator");
        Torch.EnsureLoaded();
        Assert.Contains("huge pages for tensors ≥ 2 MiB", NativeHeap.Report);
        // libtorch aligns a tensor to the page only when its huge-page setting is on (64 bytes otherwise: glibc then
        // puts it 64 bytes into a fresh mapping, or anywhere on its heap), so this shows the setting reached libtorch in time.
        foreach (long mib in new long[] { 2, 5, 40 })
        {
            using var t = empty(mib << 18);
            Assert.Equal(0L, (long)t.storage<float>().data_ptr() % 4096);
        }
    }

    [SkippableFact]
    public void RefillingALargeTensor_DoesNotFaultItInPageByPage()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "the heap policy is glibc's and libtorch's Linux allocator");
        Skip.If(HugePagesOff(), "this host turns transparent huge pages off: a 72 MiB buffer in a non-main glibc arena is mapped anew each time");
        Torch.EnsureLoaded();
        // 72 MiB, a U-Net activation's size (4x64x256x256 is 64 MiB): above anything glibc's malloc serves from its heap
        // by default, so each new buffer was a fresh mapping and the fill faulted all 18,432 of its 4 KiB pages in (measured:
        // 18,433 with DETSEG_NATIVE_HEAP=default); the policy reuses the memory or maps it in 2 MiB pages.
        const long Mib = 72, Pages = (Mib << 20) / 4096;
        long last = 0;
        for (int i = 0; i < 3; i++)
        {
            long before = MinorFaults();
            using (var scope = NewDisposeScope())
                empty(Mib << 18).fill_(1f);
            last = MinorFaults() - before;
        }
        Assert.True(last < Pages / 4, $"{last} page faults refilling a {Mib} MiB tensor ({Pages} pages); report: {NativeHeap.Report}");
    }
}

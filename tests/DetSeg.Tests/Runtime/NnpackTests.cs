using System.Runtime.InteropServices;
using DetSeg.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Runtime;

public class NnpackTests
{
    [DllImport("libc", SetLastError = true)] static extern int dup(int fd);
    [DllImport("libc", SetLastError = true)] static extern int dup2(int from, int to);
    [DllImport("libc", SetLastError = true)] static extern int fsync(int fd);

    [SkippableFact]
    public void YoloStepWithBatch16_LogsNoNnpackWarnings()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "the NNPACK switch uses libtorch's Linux entry points");
        Torch.EnsureLoaded();
        // The switch must have found libtorch's entry points and acted on what it found.
        Assert.Contains(Torch.NnpackReport, new[] { "available", "unavailable: turned off" });

        // libtorch logs to the process's fd 2: point it at a file around a YOLOv3 training step with a batch of 16 (where
        // libtorch tries NNPACK: without the switch this wrote the warning several times) and read what it wrote.
        string log = Path.Combine(TestPaths.NewTempDir(), "stderr.txt");
        int saved = dup(2);
        Assert.True(saved >= 0);
        using (var file = new FileStream(log, FileMode.Create, FileAccess.Write))
        {
            dup2((int)file.SafeFileHandle.DangerousGetHandle(), 2);
            try
            {
                using var scope = NewDisposeScope();
                using var model = new DetSeg.Detection.YOLOv3(3, 10, new DetSeg.Detection.ModelScale(0.125, 0.25));
                model.train();
                var pred = model.call(randn(16, 3, 64, 64));
                pred.scores.sum().backward();
                fsync(2);
            }
            finally { dup2(saved, 2); }
        }
        Assert.DoesNotContain("NNPACK", File.ReadAllText(log));
    }
}

// Runs the library's device-sensitive paths on CUDA and compares them with the CPU on the same
// inputs and weights. Exit 0: every check passed; 1: a check failed; 3: no CUDA device.
// Packaged and run on a GPU machine by tools/DetSeg.DeviceCheck/run-on-gpu.sh.
using System.Diagnostics;
using DetSeg.Runtime;
using TorchSharp;
using static TorchSharp.torch;

Torch.EnsureLoaded();
Console.WriteLine($"libtorch: {Torch.LoadReport}");
// --self-test runs the same checks with the CPU standing in for CUDA, to debug the checks themselves
// before spending GPU time.
bool selfTest = args.Contains("--self-test");
if (!cuda.is_available() && !selfTest)
{
    Console.WriteLine("no CUDA device: nothing to check (use --self-test to run the checks CPU vs CPU)");
    return 3;
}
var gpu = selfTest ? new torch.Device(DeviceType.CPU) : new torch.Device(DeviceType.CUDA, 0);
Console.WriteLine($"CUDA devices: {cuda.device_count()}, DETSEG_DEVICE default: {DetSeg.Runtime.Device.Default}");
int failed = 0;
foreach (var (name, check) in DetSeg.DeviceCheck.Checks.All(gpu))
{
    var sw = Stopwatch.StartNew();
    try
    {
        using var scope = NewDisposeScope();
        string detail = check();
        Console.WriteLine($"PASS {name} ({sw.ElapsedMilliseconds} ms) {detail}");
    }
    catch (Exception e)
    {
        failed++;
        Console.WriteLine($"FAIL {name} ({sw.ElapsedMilliseconds} ms): {e.GetType().Name}: {e.Message}");
        Console.WriteLine(e.StackTrace);
    }
}
Console.WriteLine($"{DetSeg.DeviceCheck.Checks.All(gpu).Count() - failed} passed, {failed} failed");
return failed == 0 ? 0 : 1;

// A console smoke check of the runtime: loads libtorch (patching a private copy if this host needs
// it), prints the device and profile, and runs one tensor op on that device.
using DetSeg.Runtime;
using static TorchSharp.torch;

Torch.EnsureLoaded();
Console.WriteLine($"libtorch: {Torch.LoadReport}");
Console.WriteLine($"device:   {DetSeg.Runtime.Device.Describe()}");
Console.WriteLine($"profile:  {Profile.Current}");
Console.WriteLine($"data:     {DataPaths.Root}");
using var x = arange(1, 11, device: DetSeg.Runtime.Device.Default).to(float32);
Console.WriteLine($"sum(1..10) on {x.device} = {x.sum().item<float>()}");

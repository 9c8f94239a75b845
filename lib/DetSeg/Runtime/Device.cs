using TorchSharp;

namespace DetSeg.Runtime;

/// <summary>
/// The device DetSeg computes on: CUDA when libtorch has it, else the CPU; <c>DETSEG_DEVICE</c>
/// (<c>cpu</c>, <c>cuda</c>, <c>cuda:1</c>) overrides the choice.
/// </summary>
/// <remarks>
/// Library code never assumes the CPU: it takes a device argument or follows its inputs' device.
/// Inside files that also say <c>using static TorchSharp.torch;</c>, write <c>Runtime.Device.Default</c>
/// to avoid the clash with <c>torch.Device</c>.
/// </remarks>
public static class Device
{
    static torch.Device? chosen;

    /// <summary>The environment variable that overrides the device.</summary>
    public const string EnvVar = "DETSEG_DEVICE";

    /// <summary>The default device, chosen once per process.</summary>
    public static torch.Device Default => chosen ??= Choose(Environment.GetEnvironmentVariable(EnvVar));

    /// <summary>Whether <see cref="Default"/> is a CUDA device.</summary>
    public static bool IsCuda => Default.type == DeviceType.CUDA;

    /// <summary>Picks a device from an override string (null or empty: automatic).</summary>
    /// <exception cref="ArgumentException">The string is not <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>, or asks for CUDA that is not there.</exception>
    public static torch.Device Choose(string? spec)
    {
        Torch.EnsureLoaded();
        if (string.IsNullOrWhiteSpace(spec))
            return torch.cuda.is_available() ? new torch.Device(DeviceType.CUDA, 0) : new torch.Device(DeviceType.CPU);

        string s = spec.Trim().ToLowerInvariant();
        if (s == "cpu") return new torch.Device(DeviceType.CPU);
        if (s == "cuda" || s.StartsWith("cuda:", StringComparison.Ordinal))
        {
            int index = 0;
            if (s.Length > 4 && !int.TryParse(s[5..], out index) || index < 0)
                throw new ArgumentException($"{EnvVar}='{spec}': the CUDA index must be a whole number ≥ 0, as in cuda:1.", nameof(spec));
            if (!torch.cuda.is_available())
                throw new ArgumentException($"{EnvVar}='{spec}' asks for CUDA, but libtorch reports no CUDA device (build with -p:TorchBackend=cuda-linux and check the driver).", nameof(spec));
            int count = torch.cuda.device_count();
            if (index >= count)
                throw new ArgumentException($"{EnvVar}='{spec}' asks for CUDA device {index}, but only {count} exist.", nameof(spec));
            return new torch.Device(DeviceType.CUDA, index);
        }
        throw new ArgumentException($"{EnvVar}='{spec}' is not a device: use cpu, cuda or cuda:N.", nameof(spec));
    }

    /// <summary>A one-line description for notebook headers, e.g. <c>cpu (2 threads)</c>.</summary>
    public static string Describe() =>
        Default.type == DeviceType.CUDA ? $"{Default} ({torch.cuda.device_count()} CUDA device(s))"
                                        : $"{Default} ({torch.get_num_threads()} threads)";
}

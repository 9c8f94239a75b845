using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace DetSeg.Runtime;

/// <summary>Raised when libtorch cannot be loaded even after the compatibility fix.</summary>
public sealed class TorchLoadException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Makes TorchSharp's native library load on hosts whose libstdc++ is older than the one it was built
/// against (Debian 12, Ubuntu 22.04). Runs by itself before any DetSeg type is used; entry points that
/// call torch before touching DetSeg call <see cref="EnsureLoaded"/> first.
/// </summary>
/// <remarks>
/// On a current host the original library loads and nothing is changed. Otherwise a private copy of
/// <c>libLibTorchSharp.so</c> is written to the cache (never into the NuGet cache), with the version
/// requirements the host's libstdc++ lacks marked weak (<see cref="ElfVersionPatch"/>), and loaded
/// first; TorchSharp's own loader then finds the library already loaded under its soname.
/// </remarks>
public static class Torch
{
    const string LibName = "libLibTorchSharp.so";
    const string StdCxx = "libstdc++.so.6";
    static readonly Lock Gate = new();
    static bool loaded;

#pragma warning disable CA2255 // The whole point: run before the first torch call in apps, tests and notebook kernels.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void OnModuleLoad()
    {
        // A failure here would surface as an opaque TypeInitializationException; defer it to the
        // first explicit call (or to TorchSharp's own message) instead.
        try { EnsureLoaded(); } catch (TorchLoadException) { }
    }

    /// <summary>What the loader did: <c>"original"</c>, <c>"patched: …"</c> or <c>"not linux"</c>.</summary>
    public static string LoadReport { get; private set; } = "not loaded";

    /// <summary>Loads TorchSharp's natives (patching a private copy if the host needs it) and initializes torch.</summary>
    /// <exception cref="TorchLoadException">libtorch cannot be loaded; the message says why, like <c>ldd</c> would.</exception>
    public static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (loaded) return;
            // Before libtorch loads: it reads its allocation setting at its first allocation.
            NativeHeap.Configure();
            LoadReport = LoadNatives();
            try
            {
                TorchSharp.torch.InitializeDeviceType(TorchSharp.DeviceType.CPU);
            }
            catch (Exception e)
            {
                throw new TorchLoadException($"TorchSharp could not initialize libtorch ({LoadReport}): {e.Message}", e);
            }
            NnpackReport = QuietNnpack();
            loaded = true;
        }
    }

    /// <summary>What <see cref="EnsureLoaded"/> did about NNPACK: <c>"available"</c>, <c>"unavailable: turned off"</c>, or why it did nothing.</summary>
    public static string NnpackReport { get; private set; } = "not loaded";

    delegate byte NnpackAvailable();
    delegate IntPtr GlobalContext();
    delegate void SetUserEnabledNnpack(IntPtr context, byte enabled);

    /// <summary>
    /// libtorch tries NNPACK for every float32 convolution with a batch of 16 or more, and where NNPACK cannot start
    /// (this project's Zen 5 CPUs: "Unsupported hardware") it logs a warning on every such call: 83,000 of a main job's
    /// 84,000 lines. Where NNPACK is unavailable, turning it off (PyTorch's <c>torch.backends.nnpack.set_flags(False)</c>,
    /// which TorchSharp does not expose) changes no kernel, since libtorch falls back either way, and leaves one line.
    /// </summary>
    static string QuietNnpack()
    {
        // Itanium-mangled C++ entry points of libtorch_cpu: Linux builds only; anything unexpected leaves libtorch as it is.
        if (!OperatingSystem.IsLinux()) return "not linux: left alone";
        try
        {
            // Already loaded with TorchSharp: dlopen finds it by its soname.
            if (!NativeLibrary.TryLoad("libtorch_cpu.so", out var lib)) return "libtorch_cpu.so not found: left alone";
            if (!NativeLibrary.TryGetExport(lib, "_ZN2at6native17_nnpack_availableEv", out var available)
                || !NativeLibrary.TryGetExport(lib, "_ZN2at13globalContextEv", out var context)
                || !NativeLibrary.TryGetExport(lib, "_ZN2at7Context20setUserEnabledNNPACKEb", out var setEnabled))
                return "entry points not found: left alone";
            if (Marshal.GetDelegateForFunctionPointer<NnpackAvailable>(available)() != 0) return "available";
            var ctx = Marshal.GetDelegateForFunctionPointer<GlobalContext>(context)();
            Marshal.GetDelegateForFunctionPointer<SetUserEnabledNnpack>(setEnabled)(ctx, 0);
            return "unavailable: turned off";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            return $"left alone ({e.GetType().Name})";
        }
    }

    static string LoadNatives()
    {
        if (!OperatingSystem.IsLinux()) return "not linux";
        string? original = FindOriginal();
        if (original is null) return "no " + LibName + " beside TorchSharp.dll (TorchSharp's own loader decides)";
        string dir = Path.GetDirectoryName(original)!;
        PreloadDependencies(dir);

        string firstError;
        try
        {
            NativeLibrary.Load(original);
            return "original: " + original;
        }
        catch (DllNotFoundException e) { firstError = e.Message; }

        byte[] bytes = File.ReadAllBytes(original);
        var needed = ElfVersionPatch.ReadVersionNeeds(bytes).Where(n => n.File == StdCxx && !n.IsWeak).Select(n => n.Version).ToList();
        string? hostStdCxx = FindHostStdCxx();
        if (hostStdCxx is null)
            throw new TorchLoadException($"Cannot load {original}: {firstError}\nNo {StdCxx} was found on this host.");
        var defined = ElfVersionPatch.ReadVersionDefinitions(File.ReadAllBytes(hostStdCxx));
        var missing = needed.Where(v => !defined.Contains(v)).ToList();
        if (missing.Count == 0)
            throw new TorchLoadException($"Cannot load {original}: {firstError}\n(The host's {hostStdCxx} defines every version it needs, so this is not the known libstdc++ mismatch.)");

        ElfVersionPatch.MarkWeak(bytes, StdCxx, missing);
        string patched = WritePrivateCopy(bytes, original);
        try
        {
            NativeLibrary.Load(patched);
        }
        catch (DllNotFoundException e)
        {
            throw new TorchLoadException(
                $"Cannot load {original}: {firstError}\nA copy with {string.Join(", ", missing)} marked weak ({patched}) failed too: {e.Message}", e);
        }
        return $"patched: {patched} ({string.Join(", ", missing)} weak; host {hostStdCxx})";
    }

    static string? FindOriginal()
    {
        string dir = Path.GetDirectoryName(typeof(TorchSharp.torch).Assembly.Location) ?? AppContext.BaseDirectory;
        string[] candidates =
        [
            Path.Combine(dir, LibName),
            Path.Combine(dir, "runtimes", "linux-x64", "native", LibName),
        ];
        return candidates.FirstOrDefault(File.Exists);
    }

    // The patched copy may live outside the natives' folder, where its $ORIGIN run-path no longer finds
    // libtorch; loading libtorch by full path first lets the loader match it by soname. It also keeps a
    // system libtorch (e.g. Debian's python3-torch) from being picked up instead.
    static void PreloadDependencies(string dir)
    {
        foreach (string name in new[] { "libc10.so", "libtorch_cpu.so", "libc10_cuda.so", "libtorch_cuda.so", "libtorch.so" })
        {
            string path = Path.Combine(dir, name);
            if (File.Exists(path)) NativeLibrary.TryLoad(path, out _);
        }
    }

    static string? FindHostStdCxx()
    {
        // The .NET runtime itself links libstdc++, so the copy this process uses is in its map.
        try
        {
            foreach (string line in File.ReadLines("/proc/self/maps"))
            {
                int at = line.IndexOf('/');
                if (at >= 0 && line.EndsWith("/" + StdCxx, StringComparison.Ordinal)) return line[at..];
            }
        }
        catch (IOException) { }
        return new[] { "/lib/x86_64-linux-gnu/", "/usr/lib/x86_64-linux-gnu/", "/usr/lib64/", "/lib64/", "/usr/lib/" }
            .Select(d => d + StdCxx).FirstOrDefault(File.Exists);
    }

    static string WritePrivateCopy(byte[] patched, string original)
    {
        string hash = Convert.ToHexString(SHA256.HashData(patched))[..16].ToLowerInvariant();
        string dir = Path.Combine(CacheRoot(), "native", hash);
        string path = Path.Combine(dir, LibName);
        if (File.Exists(path) && new FileInfo(path).Length == patched.Length) return path;
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllBytes(path, patched);
        AtomicFile.WriteAllText(Path.Combine(dir, "SOURCE.txt"), original + Environment.NewLine);
        return path;
    }

    /// <summary>DetSeg's cache folder: <c>$DETSEG_CACHE</c>, else <c>$XDG_CACHE_HOME/detseg</c>, else <c>~/.cache/detseg</c>.</summary>
    public static string CacheRoot()
    {
        string? env = Environment.GetEnvironmentVariable("DETSEG_CACHE");
        if (!string.IsNullOrEmpty(env)) return env;
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string baseDir = !string.IsNullOrEmpty(xdg) ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(baseDir, "detseg");
    }
}

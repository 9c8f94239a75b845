using System.Runtime.InteropServices;

namespace DetSeg.Runtime;

/// <summary>
/// How libtorch's CPU tensors get their memory on Linux. libtorch asks glibc's <c>malloc</c>, which hands buffers over
/// 32 MiB (and, until its threshold adapts, over 128 KiB) out as fresh <c>mmap</c>s and unmaps them on free, so every
/// training step faults its large activations in again, 4 KiB at a time. On this project's 2-core VMs that kernel time
/// was two thirds of a U-Net training step (and as much of PyTorch's: it is glibc's default, not libtorch's). DetSeg
/// therefore keeps freed memory for reuse and backs large tensors with 2 MiB pages, the two things PyTorch's CPU
/// performance guide gets from jemalloc or tcmalloc plus <c>THP_MEM_ALLOC_ENABLE</c>, without preloading anything.
/// </summary>
/// <remarks>
/// <para>What <see cref="Configure"/> sets, once, before libtorch loads (<see cref="Torch.EnsureLoaded"/> calls it):
/// libtorch's <c>THP_MEM_ALLOC_ENABLE=1</c> (page-aligned tensors of 2 MiB or more, advised for transparent huge
/// pages; libtorch reads it at its first allocation), and glibc's <c>mallopt</c> <c>M_MMAP_MAX=0</c> (no per-buffer
/// mmaps) and <c>M_TRIM_THRESHOLD</c> 2 GiB (freed memory stays with the process). A thread whose glibc arena is not the
/// main one still maps buffers over ~64 MiB (glibc's heap size), which the 2 MiB pages then make cheap.</para>
/// <para>The process keeps its peak native memory until <see cref="Release"/> (the trainer calls it after each run)
/// hands what is free back to the system. <c>DETSEG_NATIVE_HEAP=default</c> leaves glibc and libtorch as they are, and
/// so does an explicit <c>THP_MEM_ALLOC_ENABLE</c>, <c>MALLOC_*_</c> or <c>GLIBC_TUNABLES</c> setting for its part.</para>
/// </remarks>
public static class NativeHeap
{
    const int M_TRIM_THRESHOLD = -1, M_MMAP_MAX = -4;
    static readonly Lock Gate = new();
    static bool configured;
    static MallocTrim? trim; // set where Configure found glibc

    /// <summary>What <see cref="Configure"/> did, e.g. <c>"huge pages for tensors ≥ 2 MiB; malloc keeps freed memory"</c>.</summary>
    public static string Report { get; private set; } = "not configured";

    delegate int MallOpt(int param, int value);
    delegate int MallocTrim(nuint pad);
    delegate int SetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);
    delegate IntPtr GetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name);

    /// <summary>Applies the policy above once per process; later calls do nothing. Never throws: anything unexpected
    /// leaves the allocator as it was and says so in <see cref="Report"/>.</summary>
    public static void Configure()
    {
        lock (Gate)
        {
            if (configured) return;
            configured = true;
            Report = Apply();
        }
    }

    /// <summary>Hands the native memory that is free back to the system (glibc's <c>malloc_trim</c>); a no-op where
    /// <see cref="Configure"/> changed nothing. Cheap next to a training run; costly inside a training step.</summary>
    public static void Release() => trim?.Invoke(0);

    static string Apply()
    {
        if (!OperatingSystem.IsLinux()) return "not linux: left alone";
        if (Environment.GetEnvironmentVariable("DETSEG_NATIVE_HEAP") is "default") return "DETSEG_NATIVE_HEAP=default: left alone";
        try
        {
            // glibc only (musl has no mallopt): anything else is left as it is.
            if (!NativeLibrary.TryLoad("libc.so.6", out var lib)
                || !NativeLibrary.TryGetExport(lib, "mallopt", out var mallopt)
                || !NativeLibrary.TryGetExport(lib, "setenv", out var setenv)
                || !NativeLibrary.TryGetExport(lib, "getenv", out var getenv)
                || !NativeLibrary.TryGetExport(lib, "malloc_trim", out var mallocTrim))
                return "not glibc: left alone";
            var parts = new List<string>();
            // The native environment, not .NET's copy of it: libtorch reads it with getenv.
            if (Marshal.GetDelegateForFunctionPointer<GetEnv>(getenv)("THP_MEM_ALLOC_ENABLE") != IntPtr.Zero)
                parts.Add("THP_MEM_ALLOC_ENABLE set by the user");
            else if (Marshal.GetDelegateForFunctionPointer<SetEnv>(setenv)("THP_MEM_ALLOC_ENABLE", "1", 0) == 0)
                parts.Add("huge pages for tensors ≥ 2 MiB");
            bool userMalloc = Environment.GetEnvironmentVariables().Keys.Cast<string>()
                .Any(k => k == "GLIBC_TUNABLES" || (k.StartsWith("MALLOC_", StringComparison.Ordinal) && k.EndsWith('_')));
            if (userMalloc) parts.Add("malloc settings left to the user's environment");
            else
            {
                var set = Marshal.GetDelegateForFunctionPointer<MallOpt>(mallopt);
                // mallopt returns 1 on success.
                if (set(M_MMAP_MAX, 0) == 1 && set(M_TRIM_THRESHOLD, int.MaxValue) == 1) parts.Add("malloc keeps freed memory");
                else parts.Add("mallopt refused: malloc left alone");
            }
            trim = Marshal.GetDelegateForFunctionPointer<MallocTrim>(mallocTrim);
            return string.Join("; ", parts);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            return $"left alone ({e.GetType().Name})";
        }
    }
}

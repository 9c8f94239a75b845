using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DetSeg.Bench;

/// <summary>One benchmark. Implementations are found by reflection: add a class, nothing else.</summary>
public interface IBenchmark
{
    /// <summary>The name given on the command line, e.g. <c>metrics</c>.</summary>
    string Name { get; }

    /// <summary>Runs the benchmark and adds its figures to <paramref name="result"/>.</summary>
    void Run(JsonObject result);
}

/// <summary>Timing and reporting shared by every benchmark.</summary>
public static class Bench
{
    /// <summary>Times <paramref name="action"/>: <paramref name="warmup"/> untimed runs, then the median and spread of <paramref name="reps"/> runs, in ms.</summary>
    public static JsonObject Time(Action action, int reps = 5, int warmup = 2)
    {
        for (int i = 0; i < warmup; i++) action();
        var ms = new double[reps];
        for (int i = 0; i < reps; i++)
        {
            var sw = Stopwatch.StartNew();
            action();
            ms[i] = sw.Elapsed.TotalMilliseconds;
        }
        Array.Sort(ms);
        return new JsonObject
        {
            ["median_ms"] = Math.Round(ms[reps / 2], 4),
            ["min_ms"] = Math.Round(ms[0], 4),
            ["max_ms"] = Math.Round(ms[^1], 4),
            ["reps"] = reps,
        };
    }

    /// <summary>The process's resident set size in MB (Linux; the managed working set elsewhere).</summary>
    public static double RssMb()
    {
        if (File.Exists("/proc/self/status"))
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return Math.Round(long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0, 1);
        return Math.Round(Environment.WorkingSet / 1048576.0, 1);
    }

    internal static JsonObject Machine() => new()
    {
        ["os"] = RuntimeInformation.OSDescription,
        ["cpu_count"] = Environment.ProcessorCount,
        ["torch_threads"] = TorchSharp.torch.get_num_threads(),
        ["device"] = DetSeg.Runtime.Device.Describe(),
        ["dotnet"] = RuntimeInformation.FrameworkDescription,
        ["when_utc"] = DateTime.UtcNow.ToString("u"),
    };

    static int Main(string[] args)
    {
        DetSeg.Runtime.Torch.EnsureLoaded();
        // bench/compare pins both sides to the same thread count (the PyTorch reference sets 2)
        if (int.TryParse(Environment.GetEnvironmentVariable("DETSEG_BENCH_THREADS"), out int threads) && threads > 0)
            TorchSharp.torch.set_num_threads(threads);
        var all = Assembly.GetExecutingAssembly().GetTypes()
            .Where(t => typeof(IBenchmark).IsAssignableFrom(t) && !t.IsAbstract && !t.IsInterface)
            .Select(t => (IBenchmark)Activator.CreateInstance(t)!)
            .OrderBy(b => b.Name).ToList();
        var chosen = args.Length == 0 ? all : all.Where(b => args.Contains(b.Name)).ToList();
        var unknown = args.Except(all.Select(b => b.Name)).ToList();
        if (unknown.Count > 0 || chosen.Count == 0)
        {
            Console.Error.WriteLine($"Unknown benchmark(s): {string.Join(", ", unknown)}. Known: {string.Join(", ", all.Select(b => b.Name))}");
            return 2;
        }
        var report = new JsonObject
        {
            ["machine"] = Machine(),
            ["command"] = "dotnet run -c Release --project bench/DetSeg.Bench -- " + string.Join(' ', args),
        };
        foreach (var b in chosen)
        {
            var r = new JsonObject();
            b.Run(r);
            report[b.Name] = r;
            Console.Error.WriteLine($"[bench] {b.Name} done");
        }
        Console.WriteLine(report.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }
}

using System.Diagnostics;
using System.Text.Json.Nodes;

namespace DetSeg.Bench;

/// <summary>
/// The PyTorch reference bench's timing protocol (<c>../shared/reference/bench.py</c>, <c>timeit</c>), so both sides
/// of <c>bench/compare</c> are measured alike: wait until other processes leave the CPUs idle, then time repetitions
/// and redo any during which other processes used more than <see cref="ForeignMax"/> of the machine.
/// </summary>
/// <remarks>Linux only (reads <c>/proc</c>); elsewhere it times every repetition as <see cref="Bench.Time"/> does.</remarks>
public static class CleanTimer
{
    /// <summary>Largest share (0..1) of all CPUs that other processes may use during a kept repetition:
    /// <c>BENCH_FOREIGN_MAX</c>, default 0.10 as in bench.py; 1 or more turns the protocol off.</summary>
    public static double ForeignMax { get; } =
        double.TryParse(Environment.GetEnvironmentVariable("BENCH_FOREIGN_MAX"), System.Globalization.NumberStyles.Float,
            System.Globalization.CultureInfo.InvariantCulture, out var f) ? f : 0.10;

    /// <summary>Repetitions discarded so far and seconds spent waiting for an idle machine (for the report).</summary>
    public static (int Discarded, double IdleWaitSeconds) Contention => (discarded, idleWait);

    static int discarded;
    static double idleWait;
    static readonly bool HasProc = File.Exists("/proc/stat") && File.Exists("/proc/self/stat");
    const double ClockTicks = 100; // USER_HZ: 100 on every Linux ABI .NET runs on

    /// <summary>Median, min and max (ms) of <paramref name="reps"/> clean repetitions after <paramref name="warmup"/>
    /// untimed ones; <paramref name="per"/> divides each time (items per call). <paramref name="waitIdle"/> false skips
    /// the idle wait before the warm-up (for many short rows after one <see cref="WaitIdleNow"/>).</summary>
    public static JsonObject Time(Action action, int reps, int warmup = 2, int per = 1, int maxRetries = 30, bool waitIdle = true)
    {
        bool clean = HasProc && ForeignMax < 1;
        if (clean && waitIdle) WaitIdle();
        for (int i = 0; i < warmup; i++) action();
        var ms = new List<double>(reps);
        double maxForeign = 0;
        int redone = 0;
        while (ms.Count < reps)
        {
            var a = clean ? Snapshot() : default;
            var sw = Stopwatch.StartNew();
            action();
            double t = sw.Elapsed.TotalMilliseconds / per;
            if (clean)
            {
                double f = Foreign(a, Snapshot());
                if (f > ForeignMax && redone < maxRetries)
                {
                    redone++;
                    WaitIdle();
                    continue;
                }
                maxForeign = Math.Max(maxForeign, f);
            }
            ms.Add(t);
        }
        discarded += redone;
        ms.Sort();
        return new JsonObject
        {
            ["median_ms"] = Math.Round(ms.Count % 2 == 1 ? ms[ms.Count / 2] : (ms[ms.Count / 2 - 1] + ms[ms.Count / 2]) / 2, 4),
            ["min_ms"] = Math.Round(ms[0], 4),
            ["max_ms"] = Math.Round(ms[^1], 4),
            ["reps"] = reps,
            ["warmup"] = warmup,
            ["discarded_reps"] = redone,
            ["max_foreign_cpu_share"] = Math.Round(maxForeign, 3),
        };
    }

    /// <summary>Waits until other processes leave the CPUs idle (3 s below <see cref="ForeignMax"/>; at most 15 min).</summary>
    public static void WaitIdleNow() { if (HasProc && ForeignMax < 1) WaitIdle(); }

    /// <summary>(busy jiffies of the machine, jiffies of this process, seconds).</summary>
    static (long Busy, long Mine, double Seconds) Snapshot()
    {
        var cpu = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(long.Parse).ToArray();
        long busy = cpu.Sum() - cpu[3] - cpu[4]; // minus idle and iowait
        var stat = File.ReadAllText("/proc/self/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        long mine = long.Parse(fields[11]) + long.Parse(fields[12]); // utime + stime, all threads
        return (busy, mine, Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency);
    }

    static double Foreign((long Busy, long Mine, double Seconds) a, (long Busy, long Mine, double Seconds) b)
    {
        double wall = Math.Max(b.Seconds - a.Seconds, 1e-6);
        return Math.Max(0, ((b.Busy - a.Busy) - (b.Mine - a.Mine)) / ClockTicks / (wall * Environment.ProcessorCount));
    }

    static void WaitIdle(double maxWaitSeconds = 900, int need = 3)
    {
        var sw = Stopwatch.StartNew();
        int ok = 0;
        while (ok < need && sw.Elapsed.TotalSeconds < maxWaitSeconds)
        {
            var a = Snapshot();
            Thread.Sleep(1000);
            ok = Foreign(a, Snapshot()) < ForeignMax ? ok + 1 : 0;
        }
        idleWait += sw.Elapsed.TotalSeconds;
    }
}

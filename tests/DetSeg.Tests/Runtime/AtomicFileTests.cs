using DetSeg.Plots;
using DetSeg.Runtime;

namespace DetSeg.Tests.Runtime;

public class AtomicFileTests
{
    [Fact]
    public void Figure_SaveHtml_ConcurrentSavesOfOnePath_AllSucceed_AndLeaveNoTemp()
    {
        // The drifted copy named its temp file after the process id only: two saves of one path in one
        // process shared a temp file, and one of them lost its file to the other's move.
        string dir = TestPaths.NewTempDir();
        string path = Path.Combine(dir, "curves.html");
        var figures = Enumerable.Range(0, 4).Select(i => Charts.Line([new Series($"s{i}", [1.0, 0.5 + i])], title: $"figure {i}")).ToArray();
        foreach (var f in figures) f.ToJson();   // render first: the race is in the write, not the bridge
        var errors = new System.Collections.Concurrent.ConcurrentBag<Exception>();
        Parallel.For(0, 40, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            try { figures[i % 4].SaveHtml(path); }
            catch (Exception e) { errors.Add(e); }
        });
        Assert.Empty(errors);
        Assert.Equal(["curves.html"], Directory.GetFiles(dir).Select(Path.GetFileName));
        string html = File.ReadAllText(path);
        Assert.EndsWith("</html>", html.TrimEnd());
        Assert.Single(Enumerable.Range(0, 4), i => html.Contains($"<title>figure {i}</title>"));   // one whole page
    }

    [Fact]
    public void Write_FailingWriter_KeepsTheOldContent_AndRemovesItsTemp()
    {
        string dir = TestPaths.NewTempDir();
        string path = Path.Combine(dir, "metrics.json");
        AtomicFile.WriteAllText(path, "old");
        var e = Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s =>
        {
            s.Write("half of the new con"u8);
            throw new InvalidOperationException("disk full");
        }));
        Assert.Equal("disk full", e.Message);
        Assert.Equal("old", File.ReadAllText(path));
        Assert.Equal(["metrics.json"], Directory.GetFiles(dir).Select(Path.GetFileName));
    }

    [Fact]
    public void Write_RemovesTempsOfDeadProcesses_KeepsThoseOfLiveOnes()
    {
        string dir = TestPaths.NewTempDir();
        string path = Path.Combine(dir, "last.ckpt");
        // Linux pids stay below 2^22, so int.MaxValue names a process that cannot exist (a writer killed mid-write).
        string orphan = path + $".tmp-{int.MaxValue}-0123456789abcdef0123456789abcdef";
        string live = path + $".tmp-{Environment.ProcessId}-fedcba9876543210fedcba9876543210";
        string unrelated = path + ".tmp-notes.txt";
        foreach (var f in new[] { orphan, live, unrelated }) File.WriteAllText(f, "x");

        AtomicFile.WriteAllBytes(path, [1, 2, 3]);

        Assert.False(File.Exists(orphan));
        Assert.True(File.Exists(live));
        Assert.True(File.Exists(unrelated));
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(path));
    }
}

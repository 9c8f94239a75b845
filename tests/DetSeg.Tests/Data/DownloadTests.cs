using System.Security.Cryptography;
using DetSeg.Data;

namespace DetSeg.Tests.Data;

public class DownloadTests
{
    [Fact]
    public void EnsureFile_VerifiesMd5_AndMovesIntoPlace()
    {
        byte[] body = Enumerable.Range(0, 5000).Select(i => (byte)i).ToArray();
        string md5 = Convert.ToHexStringLower(MD5.HashData(body));
        using var server = new LocalHttpServer(body);
        string url = server.Url;
        string dest = Path.Combine(TestPaths.NewTempDir(), "sub", "data.bin");
        Download.EnsureFile(dest, ["http://127.0.0.1:1/unreachable", url], md5, TextWriter.Null);
        Assert.Equal(body, File.ReadAllBytes(dest));
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(dest)!));   // no temp file left
    }

    [Fact]
    public void EnsureFile_ChecksumMismatch_DeletesAndNamesUrlAndBothSums()
    {
        byte[] body = [1, 2, 3];
        using var server = new LocalHttpServer(body);
        string url = server.Url;
        string dir = TestPaths.NewTempDir();
        string dest = Path.Combine(dir, "data.bin");
        var e = Assert.Throws<InvalidDataException>(() => Download.EnsureFile(dest, [url], "00000000000000000000000000000000", TextWriter.Null));
        Assert.Contains(url, e.Message);
        Assert.Contains("00000000000000000000000000000000", e.Message);
        Assert.Contains(Convert.ToHexStringLower(MD5.HashData(body)), e.Message);
        Assert.Empty(Directory.GetFiles(dir));
    }

    [Fact]
    public void EnsureFile_Offline_SaysWhereToPutTheFile()
    {
        string dest = Path.Combine(TestPaths.NewTempDir(), "t10k.gz");
        var e = Assert.Throws<DataUnavailableException>(() => Download.EnsureFile(dest, ["http://127.0.0.1:1/x"], "abc", TextWriter.Null));
        Assert.Contains(dest, e.Message);
        Assert.Contains("DETSEG_DATA", e.Message);
    }

    static byte[] Body(int n, int seed = 7)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    static string Md5(byte[] b) => Convert.ToHexStringLower(MD5.HashData(b));

    [Fact]
    public void EnsureFile_BodyCutOff_PutsNothingInPlace_AndTheNextCallResumesTheRest()
    {
        var body = Body(300_000);
        using var server = new LocalHttpServer(body) { CutAfter = 100_000 };
        string dir = TestPaths.NewTempDir();
        string dest = Path.Combine(dir, "weights.bin");
        var e = Assert.Throws<DataUnavailableException>(() => Download.EnsureFile(dest, [server.Url], Md5(body), TextWriter.Null));
        Assert.Contains(server.Url, e.Message);
        Assert.False(File.Exists(dest));
        long kept = File.Exists(dest + ".part") ? new FileInfo(dest + ".part").Length : 0;
        Assert.InRange(kept, 0, 100_000);
        if (kept > 0) Assert.Equal(body[..(int)kept], File.ReadAllBytes(dest + ".part"));   // a true prefix, kept for resuming

        var log = new StringWriter();
        Download.EnsureFile(dest, [server.Url], Md5(body), log);
        Assert.Equal(body, File.ReadAllBytes(dest));
        Assert.Equal(kept > 0 ? $"bytes={kept}-" : "", server.Ranges.Last());
        Assert.Equal(["weights.bin"], Directory.GetFiles(dir).Select(Path.GetFileName));
    }

    [Fact]
    public void EnsureFile_PartFromAKilledDownload_IsResumedWithARangeRequest()
    {
        var body = Body(200_000);
        using var server = new LocalHttpServer(body);
        string dir = TestPaths.NewTempDir();
        string dest = Path.Combine(dir, "yolov3.weights");
        File.WriteAllBytes(dest + ".part", body[..123_456]);
        var log = new StringWriter();
        Download.EnsureFile(dest, [server.Url], Md5(body), log);
        Assert.Equal(body, File.ReadAllBytes(dest));
        Assert.Equal(["bytes=123456-"], server.Ranges);
        Assert.Contains("Resuming", log.ToString());
        Assert.Contains("195 / 195 KiB (100 %)", log.ToString());
        Assert.False(File.Exists(dest + ".part"));
    }

    [Fact]
    public void EnsureFile_ServerIgnoringRange_OrAStalePart_StillGivesTheRightFile()
    {
        var body = Body(50_000);
        string dir = TestPaths.NewTempDir();
        string dest = Path.Combine(dir, "a.bin");
        using (var server = new LocalHttpServer(body) { HonourRange = false })
        {
            File.WriteAllBytes(dest + ".part", Body(20_000, seed: 99));   // not even a prefix
            Download.EnsureFile(dest, [server.Url], Md5(body), TextWriter.Null);
            Assert.Equal(body, File.ReadAllBytes(dest));
        }
        File.Delete(dest);
        using (var server = new LocalHttpServer(body))
        {
            // A prefix of another version, resumed: the md5 fails, and one fresh download from byte 0 decides.
            File.WriteAllBytes(dest + ".part", Body(20_000, seed: 99));
            Download.EnsureFile(dest, [server.Url], Md5(body), TextWriter.Null);
            Assert.Equal(body, File.ReadAllBytes(dest));
            Assert.Equal(["bytes=20000-", ""], server.Ranges);
        }
        Assert.Equal(["a.bin"], Directory.GetFiles(dir).Select(Path.GetFileName));
    }

    [Fact]
    public void EnsureFile_ServerError_PutsNothingInPlace()
    {
        using var server = new LocalHttpServer(Body(1000)) { FailWith = 500 };
        string dir = TestPaths.NewTempDir();
        string dest = Path.Combine(dir, "x.bin");
        var e = Assert.Throws<DataUnavailableException>(() => Download.EnsureFile(dest, [server.Url], Md5(Body(1000)), TextWriter.Null));
        Assert.Contains("500", e.Message);
        Assert.Contains(dest, e.Message);
        Assert.Empty(Directory.GetFiles(dir));
    }

    [Fact]
    public void EnsureFile_ExistingFileWithAnotherMd5_IsDownloadedAgain_TheRightOneIsNotTouched()
    {
        var body = Body(10_000);
        using var server = new LocalHttpServer(body);
        string dest = Path.Combine(TestPaths.NewTempDir(), "t10k.gz");
        File.WriteAllBytes(dest, body[..5_000]);   // a truncated file left in place
        Download.EnsureFile(dest, [server.Url], Md5(body), TextWriter.Null);
        Assert.Equal(body, File.ReadAllBytes(dest));
        Assert.Single(server.Ranges);
        var stamp = File.GetLastWriteTimeUtc(dest);
        Download.EnsureFile(dest, [server.Url], Md5(body), TextWriter.Null);
        Assert.Single(server.Ranges);   // no second request
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(dest));
    }

    [Fact]
    public void EnsureFile_PartLockedByAnotherDownload_FailsAtOnce()
    {
        var body = Body(1000);
        using var server = new LocalHttpServer(body);
        string dest = Path.Combine(TestPaths.NewTempDir(), "x.bin");
        using (new FileStream(dest + ".part", FileMode.Create, FileAccess.ReadWrite, FileShare.None))
        {
            var e = Assert.Throws<IOException>(() => Download.EnsureFile(dest, [server.Url], Md5(body), TextWriter.Null));
            Assert.Contains("Another process is downloading", e.Message);
        }
        Assert.Empty(server.Ranges);
    }

    [Fact]
    public void EnsureFile_RemovesLeftoversOfKilledWrites()
    {
        var body = Body(1000);
        using var server = new LocalHttpServer(body);
        string dir = TestPaths.NewTempDir();
        string dest = Path.Combine(dir, "x.bin");
        // What a killed process leaves: this downloader's old per-process part and an atomic-writer temp (pid int.MaxValue never runs).
        File.WriteAllText(dest + $".part-{int.MaxValue}-0123456789abcdef0123456789abcdef", "half");
        File.WriteAllText(dest + $".tmp-{int.MaxValue}-0123456789abcdef0123456789abcdef", "half");
        Download.EnsureFile(dest, [server.Url], Md5(body), TextWriter.Null);
        Assert.Equal(["x.bin"], Directory.GetFiles(dir).Select(Path.GetFileName));
    }

    static byte[] PennFudanZip()
    {
        using var ms = new MemoryStream();
        using (var zip = new System.IO.Compression.ZipArchive(ms, System.IO.Compression.ZipArchiveMode.Create, leaveOpen: true))
        {
            var root = Fixtures.PennFudanFolder(1);
            foreach (var f in Directory.GetFiles(root, "*", SearchOption.AllDirectories))
                System.IO.Compression.ZipFileExtensions.CreateEntryFromFile(zip, f, "PennFudanPed/" + Path.GetRelativePath(root, f).Replace('\\', '/'));
        }
        return ms.ToArray();
    }

    [Fact]
    public void PennFudan_CorruptZip_IsNamedAndDeleted()
    {
        var garbage = Body(5000);
        using var server = new LocalHttpServer(garbage);
        string parent = TestPaths.NewTempDir();
        string root = Path.Combine(parent, "PennFudanPed");
        var e = Assert.Throws<InvalidDataException>(() => PennFudan.DownloadTo(root, [server.Url], Md5(garbage), TextWriter.Null));
        Assert.Contains(Path.Combine(parent, "PennFudanPed.zip"), e.Message);
        Assert.False(File.Exists(Path.Combine(parent, "PennFudanPed.zip")));
        Assert.Empty(Directory.GetFileSystemEntries(parent));   // no staging folder either
    }

    [Fact]
    public void PennFudan_ExistingCorruptZip_IsFetchedAgain()
    {
        var zip = PennFudanZip();
        using var server = new LocalHttpServer(zip);
        string parent = TestPaths.NewTempDir();
        File.WriteAllBytes(Path.Combine(parent, "PennFudanPed.zip"), zip[..(zip.Length / 2)]);
        string killed = Path.Combine(parent, $".PennFudanPed-extract-{int.MaxValue}-0123456789abcdef", "PennFudanPed");   // a killed extraction
        Directory.CreateDirectory(killed);
        string root = Path.Combine(parent, "PennFudanPed");
        PennFudan.DownloadTo(root, [server.Url], Md5(zip), TextWriter.Null);
        Assert.Equal(1, new PennFudan(root, download: false).Count);
        Assert.Equal(["PennFudanPed", "PennFudanPed.zip"], Directory.GetFileSystemEntries(parent).Select(Path.GetFileName).Order());
    }
}

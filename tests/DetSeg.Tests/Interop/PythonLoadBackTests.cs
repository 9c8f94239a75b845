using System.Diagnostics;
using DetSeg.Interop;
using static DetSeg.Tests.Interop.InteropModels;
using static TorchSharp.torch;

namespace DetSeg.Tests.Interop;

/// <summary>
/// The other direction: weights DetSeg saves load with PyTorch's own <c>load_state_dict(strict=True)</c> into the
/// reference port's models (tools/fixtures/check_detseg_weights.py) and give DetSeg's outputs within 1e-5.
/// Needs Python with PyTorch: DETSEG_PYTHON, else /usr/bin/python3 (Debian: apt-get install python3-torch
/// python3-torchvision python3-pil), and ../shared/reference/seed_ref.py; skips naming what is missing.
/// </summary>
public class PythonLoadBackTests(Xunit.Abstractions.ITestOutputHelper log)
{
    static readonly Lazy<(string? Python, string Why)> Python = new(FindPython);

    static (string?, string) FindPython()
    {
        string reference = Environment.GetEnvironmentVariable("DETSEG_REFERENCE")
            ?? Path.GetFullPath(Path.Combine(TestPaths.RepoRoot, "..", "shared", "reference"));
        if (!File.Exists(Path.Combine(reference, "seed_ref.py")))
            return (null, $"the PyTorch reference port {reference}/seed_ref.py is absent (set DETSEG_REFERENCE)");
        string python = Environment.GetEnvironmentVariable("DETSEG_PYTHON") ?? "/usr/bin/python3";
        if (!File.Exists(python)) return (null, $"{python} is absent (set DETSEG_PYTHON, or apt-get install python3-torch python3-torchvision python3-pil)");
        var (code, output) = Run(python, "-c \"import torch, torchvision, PIL\"");
        return code == 0 ? (python, "") : (null, $"{python} cannot import torch/torchvision/PIL (apt-get install python3-torch python3-torchvision python3-pil): {output.Trim()}");
    }

    static (int Code, string Output) Run(string exe, string args)
    {
        var psi = new ProcessStartInfo(exe, args) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = TestPaths.RepoRoot };
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3))) { p.Kill(entireProcessTree: true); return (-1, "timed out after 3 minutes"); }
        return (p.ExitCode, stdout + stderr.Result);
    }

    [SkippableTheory]
    [InlineData("unet", ".pt")]
    [InlineData("unet", ".safetensors")]
    [InlineData("yolo", ".pth")]
    [InlineData("yolo", ".safetensors")]
    [InlineData("vit", ".pt")]
    [InlineData("vit", ".safetensors")]
    public void DetSegSavedWeights_LoadInPyTorch_AndGiveTheSameOutputs(string kind, string extension)
    {
        var (python, why) = Python.Value;
        Skip.If(python is null, why);

        manual_seed(11); // weights unrelated to the PyTorch-made fixtures
        var model = Build(kind);
        RandomizeBatchNorm(model, 12);
        var input = Safetensors.Read(Fixture($"{kind}_io.safetensors"))["input"];
        var io = new Dictionary<string, Tensor>(Outputs(model, input)) { ["input"] = input };
        string dir = TestPaths.NewTempDir();
        string weights = Path.Combine(dir, kind + extension), ioPath = Path.Combine(dir, "io.safetensors");
        PyTorchWeights.Save(model, weights);
        Safetensors.Write(ioPath, io);

        var (code, output) = Run(python!, $"tools/fixtures/check_detseg_weights.py {kind} \"{weights}\" \"{ioPath}\"");
        log.WriteLine(output);
        Assert.True(code == 0, $"check_detseg_weights.py exited {code}:\n{output}");
        Assert.Equal(io.Count - 1, output.Split('\n').Count(l => l.StartsWith(kind + " ") && l.TrimEnd().EndsWith(" ok")));
    }
}

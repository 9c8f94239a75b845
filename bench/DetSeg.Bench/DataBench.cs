using System.Diagnostics;
using System.Text.Json.Nodes;
using DetSeg.Data;
using DetSeg.Segmentation;
using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Bench;

/// <summary>
/// Data pipeline speed on the CPU: per item of PFSegmentation (training and eval mode, 256 px) and of
/// MNISTClutter / MCDetection (128 px), per item and per batch of 64; and whether a training epoch waits on
/// data: a DataLoader (1 background worker) feeding U-Net training steps, timing how long each
/// <c>MoveNext</c> blocks. Uses <c>$DETSEG_DATA</c> (Penn-Fudan, MNIST test split); cases without data are skipped.
/// </summary>
public sealed class DataBench : IBenchmark
{
    /// <inheritdoc/>
    public string Name => "data";

    /// <inheritdoc/>
    public void Run(JsonObject result)
    {
        var cpu = new torch.Device(DeviceType.CPU);
        result["data_root"] = DetSeg.Runtime.DataPaths.Root;
        result["load_average"] = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "n/a";
        result["pytorch_reference_ms"] = new JsonObject
        {
            ["note"] = "../shared/reference/baseline.json (torch 1.13 + PIL, 2 threads, quiet machine), per item",
            ["pf_item_ms_openblas"] = 39.18, ["pf_item_ms_default_blas"] = 46.67, ["pf_item_eval_ms_default_blas"] = 7.47,
            ["mc_item_ms_default_blas"] = 1.39, ["mcdet_item_ms_default_blas"] = 1.87,
        };

        // Per-item figures at 2 torch threads (the default here) and at 1: item tensors are small, and on a busy
        // machine the 2-thread fork/join of every op costs more than it gains (seen: 5-15x under load 25).
        int defaultThreads = torch.get_num_threads();
        PennFudan? pf = null;
        try { pf = new PennFudan(download: false); } catch (DataUnavailableException e) { result["pennfudan"] = "skipped: " + e.Message; }
        MNIST? mnist = null;
        try { mnist = new MNIST(download: false); } catch (DataUnavailableException e) { result["mnist"] = "skipped: " + e.Message; }
        foreach (int threads in new[] { defaultThreads, 1 }.Distinct())
        {
            torch.set_num_threads(threads);
            var r = new JsonObject();
            result[$"threads_{threads}"] = r;
            if (pf is not null)
            {
                int i = 0;
                r["pennfudan_decode_item"] = Bench.Time(() => { using var item = pf[i++ % pf.Count]; }, reps: 15, warmup: 3);
                var seg = new PFSegmentation(pf, seed: 0, device: cpu);
                r["pfsegmentation_eval_item_256"] = ItemTime(seg, 15);
                seg.Training = true;
                r["pfsegmentation_train_item_256"] = ItemTime(seg, 25);
            }
            if (mnist is not null)
            {
                var clutter = new MNISTClutter(mnist: mnist, device: cpu);
                var det = new MCDetection(clutter);
                r["mnistclutter_item_128"] = ItemTime(clutter, 30);
                r["mcdetection_item_128"] = ItemTime(det, 30);
                r["mnistclutter_batch64_128"] = BatchTime(clutter, 64, 7);
                r["mcdetection_batch64_128"] = BatchTime(det, 64, 7);
            }
        }
        torch.set_num_threads(defaultThreads);
        if (pf is not null)
            result["epoch_wait_unet16_pf128_b4"] = EpochWait(new PFSegmentation(pf, imageSize: 128, seed: 0, device: cpu) { Training = true }, cpu);
        result["rss_mb"] = Bench.RssMb();
    }

    static JsonObject ItemTime(IDataset<Tensor[]> ds, int reps)
    {
        int i = 0;
        return Bench.Time(() => { foreach (var t in ds[i++ % ds.Count]) t.Dispose(); }, reps, warmup: 3);
    }

    static JsonObject BatchTime(IBatchedDataset ds, int size, int reps)
    {
        int start = 0;
        var t = Bench.Time(() =>
        {
            var idx = Enumerable.Range(start, size).ToArray();
            start += size;
            foreach (var x in ds.GetBatch(idx)) x.Dispose();
        }, reps, warmup: 2);
        t["per_item_ms"] = Math.Round(t["median_ms"]!.GetValue<double>() / size, 4);
        return t;
    }

    /// <summary>Runs U-Net (width 16) training steps on loader batches and measures the time blocked on the loader.</summary>
    static JsonObject EpochWait(PFSegmentation ds, torch.Device device)
    {
        torch.manual_seed(0);
        var model = new SemanticSegmentor(3, 2, 16).to(device);
        var opt = Optim.Adam(model.parameters(), 1e-3);
        model.train();
        using var loader = new DataLoader(ds, batchSize: 4, shuffle: true, seed: 0, device: device, numWorkers: 1, prefetch: 2);
        int steps = 0, maxSteps = 16;
        double waitMs = 0, stepMs = 0;
        var total = Stopwatch.StartNew();
        using var e = loader.GetEnumerator();
        while (steps < maxSteps)
        {
            var w = Stopwatch.StartNew();
            if (!e.MoveNext()) break;
            if (steps > 0) waitMs += w.Elapsed.TotalMilliseconds;   // the first batch cannot be prefetched
            var s = Stopwatch.StartNew();
            using (var scope = NewDisposeScope())
            {
                var loss = SegmentationLoss.Compute(model.call(e.Current[0]), e.Current[1]);
                opt.zero_grad();
                loss.backward();
                opt.step();
                _ = loss.item<float>();
            }
            if (steps > 0) stepMs += s.Elapsed.TotalMilliseconds;
            steps++;
        }
        return new JsonObject
        {
            ["steps_timed"] = steps - 1,
            ["mean_wait_ms"] = Math.Round(waitMs / (steps - 1), 3),
            ["mean_step_ms"] = Math.Round(stepMs / (steps - 1), 3),
            ["wait_fraction_of_step"] = Math.Round(waitMs / stepMs, 4),
            ["total_s"] = Math.Round(total.Elapsed.TotalSeconds, 2),
        };
    }
}

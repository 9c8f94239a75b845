using System.Text.Json.Nodes;
using DetSeg.Attention;
using DetSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Bench;

/// <summary>
/// <c>attention</c>: <see cref="AttentionBlock"/>(256, 512, 8) forward on 65 tokens x 32 images x 256
/// (the PyTorch reference's <c>attention_block_ms</c>), and one training step (forward, backward, AdamW)
/// of the MNIST <see cref="VisionTransformer"/> on a batch of 128 digits.
/// </summary>
public sealed class AttentionBench : IBenchmark
{
    /// <inheritdoc/>
    public string Name => "attention";

    /// <inheritdoc/>
    public void Run(JsonObject result)
    {
        var device = Runtime.Device.Default;
        manual_seed(0);

        using (var block = new AttentionBlock(256, 512, 8))
        {
            block.to(device).eval();
            var x = randn(65, 32, 256, device: device); // [L x B x E]
            void Forward()
            {
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                block.call(x);
            }
            result["block_forward_256_512_8_L65_B32"] = Bench.Time(Forward, reps: 20, warmup: 3);
            result["block_forward_baseline_pytorch_ms"] = new JsonObject
            {
                // ../shared/reference/baseline.json, attention_block_ms, same machine kind, 2 threads, torch 1.13.
                ["default_blas"] = 684.2646,
                ["openblas"] = 35.5653,
            };
        }

        var config = VisionTransformerConfig.MNIST;
        using var vit = new VisionTransformer(config);
        vit.to(device).train();
        var optimizer = Optim.AdamW(vit.parameters(), lr: 1e-3);
        var images = randn(128, 1, 28, 28, device: device);
        var labels = randint(0, 10, new long[] { 128 }, device: device);
        void Step()
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(vit.call(images), labels);
            loss.backward();
            optimizer.step();
        }
        double rssBefore = Bench.RssMb();
        result["vit_mnist_train_step_b128"] = Bench.Time(Step, reps: 20, warmup: 3);
        for (int i = 0; i < 50; i++) Step();
        result["vit_params"] = vit.parameters().Sum(p => p.numel());
        result["rss_mb_before_after_70_steps"] = new JsonArray(rssBefore, Bench.RssMb());
    }
}

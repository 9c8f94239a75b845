using DetSeg.Attention;
using DetSeg.Training;
using static TorchSharp.torch;

namespace DetSeg.Tests.Attention;

public class ViTTrainingTests
{
    [Fact]
    public void ClassifierMetrics_TopOneAccuracy_FromLogits()
    {
        // Hand computation: predictions (argmax) 0, 2, 1, 1 for labels 0, 1, 1, 2 → 2 of 4 correct.
        using var metrics = new ClassifierMetrics(3);
        var logits = tensor(new float[,] { { 5, 0, 0 }, { 0, 1, 2 }, { 0, 3, 1 }, { 1, 2, 0 } });
        metrics.Update(logits, tensor(new long[] { 0, 1, 1, 2 }));
        var values = metrics.Values();
        Assert.Equal(0.5, values["accuracy"], 10);
        // Recall per class: 1/1, 1/2, 0/1 → mean 0.5.
        Assert.Equal(0.5, values["mean_recall"], 10);
        metrics.Reset();
        Assert.Equal(0.0, metrics.Accuracy);
        Assert.Throws<ArgumentException>(() => metrics.Update(zeros(4, 2), zeros(4, dtype: int64)));
    }

    [Fact]
    public void Train_WithTheSharedTrainer_LearnsSeparableClasses_AndKeepsTheBestEpoch()
    {
        // Two classes: faint noise, or faint noise with a bright centre square. Learnable in a few epochs by a tiny ViT.
        manual_seed(3);
        List<Tensor[]> Batches(int n)
        {
            var list = new List<Tensor[]>();
            for (int b = 0; b < n; b++)
            {
                var labels = randint(0, 2, new long[] { 16 });
                var images = rand(16, 1, 28, 28) * 0.2;
                for (int i = 0; i < 16; i++)
                    if (labels[i].item<long>() == 1) images[i, 0, 7..21, 7..21] += 1;
                list.Add([images, labels]);
            }
            return list;
        }
        var train = Batches(8);
        var val = Batches(2);
        var config = new VisionTransformerConfig(EmbedDim: 16, HiddenDim: 32, NumHeads: 2, NumLayers: 2, NumClasses: 2);
        using var model = ViTTraining.CreateModel(config, seed: 0, device: CPU);
        var run = ViTTraining.Train(model, train, val, new ViTRecipe(Epochs: 6, LearningRate: 3e-3), log: TextWriter.Null,
                                    progress: Progress.None, device: CPU);

        Assert.Equal(6, run.Result.History.Count);
        Assert.Equal(6 * 8, run.BatchLosses.Count);
        Assert.True(run.Result.BestValue >= 0.95, $"best validation accuracy {run.Result.BestValue:P1}");
        // The best epoch's weights are back in the model.
        var test = run.Trainer.OneEpoch(Phase.Testing, val);
        Assert.Equal(run.Result.BestValue, test["accuracy"], 6);
        // The learning rate decayed along the cosine (no warm-up: epoch 0 runs at the peak).
        Assert.Equal(3e-3, run.Result.History[0].LearningRate, 9);
        Assert.True(run.Result.History[^1].LearningRate < 3e-4);
    }

    [Fact]
    public void Overlay_MixesImageAndHotColours()
    {
        var images = zeros(1, 1, 2, 2);
        images[0, 0, 0, 0] = tensor(1f);
        var maps = tensor(new float[] { 0, 0, 0, 2 }).reshape(1, 2, 2);   // max 2 → scaled to 1 at (1, 1)
        var rgb = AttentionMaps.Overlay(images, maps, alpha: 0.5);
        Assert.Equal(new long[] { 1, 3, 2, 2 }, rgb.shape);
        // (0, 0): white image pixel, zero attention → 0.5·1 + 0.5·black = 0.5 in every channel.
        Assert.Equal(new[] { 0.5f, 0.5f, 0.5f }, rgb[0, .., 0, 0].data<float>().ToArray());
        // (1, 1): black pixel, full attention → 0.5·white (hot at 1 is white).
        Assert.Equal(new[] { 0.5f, 0.5f, 0.5f }, rgb[0, .., 1, 1].data<float>().ToArray());
        // (0, 1): black pixel, no attention → black.
        Assert.Equal(new[] { 0f, 0f, 0f }, rgb[0, .., 0, 1].data<float>().ToArray());
        Assert.Throws<ArgumentException>(() => AttentionMaps.Overlay(images, zeros(1, 3, 3)));
    }
}

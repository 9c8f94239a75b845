using DetSeg.Attention;
using DetSeg.Training;
using static TorchSharp.torch;

namespace DetSeg.Tests.Attention;

[Collection(GlobalRng.Name)]
public class ViTTrainingTests
{
    [Fact]
    public void Step_UpdatesTopOneAccuracy_FromLogits()
    {
        // Hand computation: predictions (argmax) 0, 2, 1, 1 for labels 0, 1, 1, 2 → 2 of 4 correct.
        var model = new VisionTransformer(new VisionTransformerConfig(EmbedDim: 8, HiddenDim: 8, NumHeads: 2, NumLayers: 1, NumClasses: 3));
        var trainer = ViTTraining.CreateTrainer(model, null, CPU);
        var logits = tensor(new float[,] { { 5, 0, 0 }, { 0, 1, 2 }, { 0, 3, 1 }, { 1, 2, 0 } });
        trainer.Metrics.Update(logits.argmax(1), tensor(new long[] { 0, 1, 1, 2 }));
        var values = trainer.Metrics.Values();
        Assert.Equal(0.5, values["accuracy"], 10);
        // Recall per class: 1/1, 1/2, 0/1 → mean 0.5; one-vs-rest accuracy per class 4/4, 2/4, 2/4 → mean 2/3.
        Assert.Equal(0.5, values["mean_recall"], 10);
        Assert.Equal(2.0 / 3, values["mean_accuracy"], 10);
        Assert.DoesNotContain("iou_0", values.Keys);
        trainer.Metrics.Reset();
        Assert.Equal(0.0, trainer.Metrics.Top1Accuracy);
        // A step with labels of the wrong length names both shapes.
        var e = Assert.Throws<ArgumentException>(() => trainer.Step([zeros(4, 1, 28, 28), zeros(3, dtype: int64)], Phase.Validation));
        Assert.Contains("[4 x 3]", e.Message);
    }

    [Fact]
    public void Optimizer_DecaysOnlyMatrices_NotBiasesNormsOrEmbeddings()
    {
        var config = new VisionTransformerConfig(EmbedDim: 8, HiddenDim: 16, NumHeads: 2, NumLayers: 1, NumClasses: 3);
        var model = new VisionTransformer(config);
        var (decay, noDecay) = ViTTraining.DecayGroups(model);
        var names = model.named_parameters().ToDictionary(np => np.parameter.Handle, np => np.name);
        Assert.Contains(noDecay, p => names[p.Handle] == "cls_token");
        Assert.Contains(noDecay, p => names[p.Handle] == "pos_embedding");
        Assert.All(decay, p => Assert.True(p.dim() >= 2, names[p.Handle]));
        Assert.All(noDecay.Where(p => p.dim() >= 2), p => Assert.Contains(names[p.Handle], new[] { "cls_token", "pos_embedding" }));
        Assert.Equal(model.parameters().Count(), decay.Count + noDecay.Count);

        // One AdamW step on zero gradients moves nothing but the decay: decayed weights shrink by 1 - lr·wd exactly
        // (0.1 · 0.5 → × 0.95), the others stay as they are.
        var before = model.named_parameters().ToDictionary(np => np.name, np => np.parameter.detach().clone());
        var optimizer = ViTTraining.CreateOptimizer(model, new ViTRecipe(LearningRate: 0.1, WeightDecay: 0.5));
        optimizer.zero_grad();
        model.parameters().Select(p => p.sum()).Aggregate((a, b) => a + b).mul(0.0).backward();
        optimizer.step();
        var decayed = decay.Select(p => names[p.Handle]).ToHashSet();
        foreach (var (name, p) in model.named_parameters())
        {
            var expected = decayed.Contains(name) ? before[name] * 0.95 : before[name];
            Assert.True(allclose(p.detach(), expected, rtol: 1e-6, atol: 1e-7), name);
        }
    }

    [Fact]
    public void Trainer_LearnsSeparableClasses_AndKeepsTheBestEpoch()
    {
        // Two classes: faint noise, or faint noise with a bright centre square. Learnable in a few epochs by a tiny ViT.
        var g = new Generator(3);
        List<Tensor[]> Batches(int n)
        {
            var list = new List<Tensor[]>();
            for (int b = 0; b < n; b++)
            {
                var labels = randint(0, 2, new long[] { 16 }, generator: g);
                var images = rand(new long[] { 16, 1, 28, 28 }, generator: g) * 0.2;
                images[.., .., 7..21, 7..21] += labels.to(float32).view(16, 1, 1, 1);
                list.Add([images, labels]);
            }
            return list;
        }
        var train = Batches(8);
        var val = Batches(2);
        var config = new VisionTransformerConfig(EmbedDim: 16, HiddenDim: 32, NumHeads: 2, NumLayers: 2, NumClasses: 2);
        var recipe = new ViTRecipe(Epochs: 6, LearningRate: 3e-3);
        using var model = ViTTraining.CreateModel(config, seed: 0, device: CPU);
        var optimizer = ViTTraining.CreateOptimizer(model, recipe);
        var trainer = ViTTraining.CreateTrainer(model, optimizer, CPU);
        var result = trainer.Train(train, val, ViTTraining.DefaultOptions(recipe, optimizer) with { Log = TextWriter.Null, Progress = Progress.None });
        result.Best!.Restore(model);

        Assert.Equal(6, result.History.Count);
        Assert.Equal(6 * 8, result.BatchLosses.Count);
        Assert.Equal(result.History[0].Train.Loss, result.BatchLosses.Take(8).Average(), 5);   // equal batch sizes
        Assert.True(result.BestValue >= 0.95, $"best validation accuracy {result.BestValue:P1}");
        // The best epoch's weights are back in the model: the test pass on the validation batches repeats its accuracy.
        var test = trainer.OneEpoch(Phase.Testing, val);
        Assert.Equal(result.BestValue, test["accuracy"], 6);
        Assert.Equal(32, trainer.Metrics.Total.item<long>());
        // The learning rate decayed along the cosine (no warm-up: epoch 0 runs at the peak).
        Assert.Equal(3e-3, result.History[0].LearningRate, 9);
        Assert.True(result.History[^1].LearningRate < 3e-4);
    }

    [Fact]
    public void Recipe_WarmsUpLinearly_ThenDecaysAlongACosine_EpochByEpoch()
    {
        // Hand values, 6 epochs with 2 of warm-up at peak 1: 1/3, 2/3, then 0.5(1 + cos(πk/4)) for k = 0..3.
        var recipe = new ViTRecipe(Epochs: 6, LearningRate: 1.0, WarmupEpochs: 2);
        double[] expected = [1.0 / 3, 2.0 / 3, 1.0, 0.5 * (1 + Math.Sqrt(0.5)), 0.5, 0.5 * (1 - Math.Sqrt(0.5))];
        for (int e = 0; e < 6; e++) Assert.Equal(expected[e], recipe.LearningRateFactor(e), 12);
        // The schedule DefaultOptions hands the trainer sets those rates on the optimizer, one step per epoch.
        using var model = new VisionTransformer(new VisionTransformerConfig(EmbedDim: 8, HiddenDim: 8, NumHeads: 2, NumLayers: 1, NumClasses: 3));
        var optimizer = ViTTraining.CreateOptimizer(model, recipe);
        var scheduler = ViTTraining.DefaultOptions(recipe, optimizer).Scheduler!;
        for (int e = 0; e < 6; e++)
        {
            Assert.All(optimizer.ParamGroups, g => Assert.Equal(expected[e], g.LearningRate, 12));
            scheduler.step();
        }
    }

    [Fact]
    public void Step_SmoothsLabelsAndAugments_InTrainingOnly()
    {
        // Hand formula of label-smoothed cross-entropy over C classes: (1 − ε)·(−log p_y) + ε/C · Σ_c (−log p_c).
        manual_seed(11);
        using var model = new VisionTransformer(new VisionTransformerConfig(EmbedDim: 8, HiddenDim: 8, NumHeads: 2, NumLayers: 1, NumClasses: 3));
        model.eval();                                                      // no dropout: both phases see the same logits
        var images = rand(2, 1, 28, 28);
        var labels = tensor(new long[] { 0, 2 });
        using var metrics = new DetSeg.Metrics.ClassificationMetrics(3);
        var step = ViTTraining.Step(model, metrics, augmentation: null, labelSmoothing: 0.2);
        var logp = nn.functional.log_softmax(model.call(images), 1).to(float64);
        double expected = 0;
        for (int i = 0; i < 2; i++)
        {
            long y = labels[i].item<long>();
            expected += 0.8 * -logp[i, y].item<double>() + 0.2 / 3 * -logp[i].sum().item<double>();
        }
        Assert.Equal(expected / 2, step([images, labels], Phase.Training).item<float>(), 5);
        double plain = -(logp[0, 0].item<double>() + logp[1, 2].item<double>()) / 2;
        Assert.Equal(plain, step([images, labels], Phase.Validation).item<float>(), 5);

        // The recipe's augmentation changes the images the model sees in training only.
        var augmented = ViTTraining.Step(model, metrics, new DetSeg.Data.RandomAffine(0, 0.2, 0, new Generator(1)));
        Assert.Equal(plain, augmented([images, labels], Phase.Validation).item<float>(), 5);
        Assert.NotEqual(plain, augmented([images, labels], Phase.Training).item<float>(), 3);
        Assert.Null(new ViTRecipe().CreateAugmentation());
        Assert.Throws<ArgumentOutOfRangeException>(() => ViTTraining.Step(model, metrics, labelSmoothing: 1.0));
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

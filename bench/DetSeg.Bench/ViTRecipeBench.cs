using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using DetSeg.Attention;
using DetSeg.Data;
using DetSeg.Training;
using TorchSharp;

namespace DetSeg.Bench;

/// <summary>
/// <c>vit-recipe</c>: the recipe search behind notebook 04 — the notebook's Pre-LN and Post-LN ViTs on the same splits
/// (cpu profile: 8,000 / 1,000 / 1,000 digits of the MNIST test split), trained with <see cref="ViTRecipe"/>'s
/// defaults overridden by <c>DETSEG_VIT_RECIPE</c>, e.g. <c>"Epochs=40;WarmupEpochs=2;Degrees=10;Translate=0.1;Zoom=0.1;LabelSmoothing=0.1"</c>.
/// Reports the best validation accuracy of each; the held-out test digits are scored only with <c>DETSEG_VIT_TEST=1</c>
/// (for the recipe chosen on validation, once). <c>DETSEG_VIT_NORM=pre</c> or <c>post</c> trains one of the two.
/// </summary>
public sealed class ViTRecipeBench : IBenchmark
{
    /// <inheritdoc/>
    public string Name => "vit-recipe";

    /// <summary><paramref name="overrides"/> ("Name=value;…") applied to <paramref name="recipe"/>.</summary>
    internal static ViTRecipe Apply(ViTRecipe recipe, string? overrides)
    {
        foreach (var part in (overrides ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var kv = part.Split('=', 2, StringSplitOptions.TrimEntries);
            if (kv.Length != 2) throw new ArgumentException($"DETSEG_VIT_RECIPE: expected Name=value, got '{part}'.");
            double d() => double.Parse(kv[1], CultureInfo.InvariantCulture);
            recipe = kv[0] switch
            {
                "Epochs" => recipe with { Epochs = int.Parse(kv[1]) },
                "BatchSize" => recipe with { BatchSize = int.Parse(kv[1]) },
                "LearningRate" => recipe with { LearningRate = d() },
                "WeightDecay" => recipe with { WeightDecay = d() },
                "Seed" => recipe with { Seed = long.Parse(kv[1]) },
                "WarmupEpochs" => recipe with { WarmupEpochs = int.Parse(kv[1]) },
                "Degrees" => recipe with { Degrees = d() },
                "Translate" => recipe with { Translate = d() },
                "Zoom" => recipe with { Zoom = d() },
                "LabelSmoothing" => recipe with { LabelSmoothing = d() },
                _ => throw new ArgumentException($"DETSEG_VIT_RECIPE: unknown field '{kv[0]}' (Epochs, BatchSize, LearningRate, WeightDecay, Seed, WarmupEpochs, Degrees, Translate, Zoom, LabelSmoothing)."),
            };
        }
        return recipe;
    }

    /// <inheritdoc/>
    public void Run(JsonObject result)
    {
        var profile = DetSeg.Runtime.Profile.Current;
        var device = DetSeg.Runtime.Device.Default;
        var recipe = Apply(new ViTRecipe(Epochs: profile.Pick(smoke: 1, cpu: 20, gpu: 40)), Environment.GetEnvironmentVariable("DETSEG_VIT_RECIPE"));
        bool test = Environment.GetEnvironmentVariable("DETSEG_VIT_TEST") == "1";
        var norms = (Environment.GetEnvironmentVariable("DETSEG_VIT_NORM") ?? "pre,post").Split(',', StringSplitOptions.TrimEntries);
        var splits = MnistDigits.Load(useTrainSplit: profile.Kind == DetSeg.Runtime.ProfileKind.Gpu, limit: profile.IsSmoke ? 256 : null);
        result["profile"] = profile.ToString();
        result["data"] = splits.Description;
        result["recipe"] = recipe.ToString();
        var runs = new JsonArray();
        foreach (var norm in norms)
        {
            if (norm is not ("pre" or "post")) throw new ArgumentException($"DETSEG_VIT_NORM: 'pre' or 'post', got '{norm}'.");
            var clock = Stopwatch.StartNew();
            var config = VisionTransformerConfig.MNIST with { PreNorm = norm == "pre" };
            using var run = new TrainingRun($"vit-{norm}");
            var model = run.Own(ViTTraining.CreateModel(config, recipe.Seed, device));
            var optimizer = run.Own(ViTTraining.CreateOptimizer(model, recipe));
            var trainer = ViTTraining.CreateTrainer(model, optimizer, device, recipe);
            var trainLoader = run.Own(new DataLoader(splits.Train, batchSize: recipe.BatchSize, shuffle: true, seed: recipe.Seed, device: device));
            using var valLoader = new DataLoader(splits.Validation, batchSize: 500, device: device);
            var options = ViTTraining.DefaultOptions(recipe, optimizer) with { Progress = Progress.None, Log = Console.Error };
            var r = run.Own(trainer.Train(trainLoader, valLoader, options));
            var entry = new JsonObject
            {
                ["norm"] = norm,
                ["best_val_accuracy"] = Math.Round(r.BestValue, 4),
                ["best_epoch"] = r.BestEpoch,
                ["last_val_accuracy"] = Math.Round(r.Series(Phase.Validation, "accuracy")[^1], 4),
                ["train_seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 1),
            };
            if (test)
            {
                r.Best!.Restore(model);
                using var testLoader = new DataLoader(splits.Test, batchSize: 500, device: device);
                entry["test_accuracy"] = Math.Round(trainer.OneEpoch(Phase.Testing, testLoader)["accuracy"], 4);
            }
            Console.Error.WriteLine($"[vit-recipe] {entry.ToJsonString()}");
            runs.Add(entry);
        }
        result["runs"] = runs;
    }
}

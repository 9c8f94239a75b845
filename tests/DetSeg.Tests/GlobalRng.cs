namespace DetSeg.Tests;

/// <summary>
/// Tests that seed or read torch's global generator (<c>manual_seed</c>, <c>get_rng_state</c>, a model built from the
/// global generator and compared with a seeded copy). xUnit runs test classes in parallel, and any draw from another class
/// between a seed and its use changes what these tests see; this collection runs them alone, after the parallel ones.
/// Tests that only need random numbers use a private <c>Generator</c> instead.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GlobalRng
{
    /// <summary>The collection's name.</summary>
    public const string Name = "torch's global generator";
}

namespace DetSeg.Attention;

/// <summary>The sizes of a <see cref="VisionTransformer"/>, passed whole (as nanoGPT's config).</summary>
/// <param name="EmbedDim">Token dimensionality E.</param>
/// <param name="HiddenDim">Hidden size of each block's MLP.</param>
/// <param name="NumChannels">Image channels C.</param>
/// <param name="NumHeads">Attention heads per block.</param>
/// <param name="NumLayers">Number of <see cref="AttentionBlock"/>s.</param>
/// <param name="NumClasses">Output classes.</param>
/// <param name="PatchSize">Patch side p.</param>
/// <param name="ImageSize">Side of the square input images; p must divide it.</param>
/// <param name="Dropout">Dropout in the blocks and after the embedding.</param>
/// <param name="PreNorm">Pre-LN (true) or Post-LN (false) blocks.</param>
public sealed record VisionTransformerConfig(
    long EmbedDim = 64,
    long HiddenDim = 256,
    long NumChannels = 1,
    long NumHeads = 4,
    long NumLayers = 6,
    long NumClasses = 10,
    long PatchSize = 7,
    long ImageSize = 28,
    double Dropout = 0.0,
    bool PreNorm = true)
{
    /// <summary>
    /// The MNIST model of the reference run (../shared/reference/README.md, "ViT anchor"): dim 64, depth 6,
    /// 4 heads, MLP 256, patch 7 on 28 x 28 digits (16 patches + CLS = 17 tokens), 305,034 parameters.
    /// </summary>
    public static VisionTransformerConfig MNIST { get; } = new();

    /// <summary>Patches per image, (ImageSize / PatchSize)².</summary>
    public long NumPatches => (ImageSize / PatchSize) * (ImageSize / PatchSize);

    /// <summary>Patches per side, ImageSize / PatchSize.</summary>
    public long GridSize => ImageSize / PatchSize;

    /// <summary>Checks that the sizes fit together.</summary>
    /// <exception cref="ArgumentException">Naming the first size at fault.</exception>
    public void Validate()
    {
        if (PatchSize <= 0 || ImageSize <= 0 || ImageSize % PatchSize != 0)
            throw new ArgumentException($"PatchSize {PatchSize} must be positive and divide ImageSize {ImageSize}.", nameof(PatchSize));
        if (NumChannels <= 0) throw new ArgumentException($"NumChannels must be positive, got {NumChannels}.", nameof(NumChannels));
        if (NumLayers <= 0) throw new ArgumentException($"NumLayers must be positive, got {NumLayers}.", nameof(NumLayers));
        if (NumClasses <= 0) throw new ArgumentException($"NumClasses must be positive, got {NumClasses}.", nameof(NumClasses));
    }
}

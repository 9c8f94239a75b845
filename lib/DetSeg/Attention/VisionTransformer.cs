using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Attention;

/// <summary>
/// A Vision Transformer (Dosovitskiy et al. 2020) built from the course's <see cref="AttentionBlock"/>:
/// images are cut into patches (<see cref="Patches.ImgToPatch"/>), each patch is projected to a token,
/// a learned CLS token is prepended, learned positional embeddings are added, the tokens go through
/// <c>NumLayers</c> blocks, and a LayerNorm + Linear head classifies the CLS token.
/// </summary>
/// <remarks>Input <c>[B x C x H x W]</c> images (H = W = ImageSize); output <c>[B x NumClasses]</c> logits.</remarks>
public sealed class VisionTransformer : nn.Module<Tensor, Tensor>
{
    private readonly Linear input_layer;
    private readonly Parameter cls_token;
    private readonly Parameter pos_embedding;
    private readonly Dropout dropout;
    private readonly ModuleList<AttentionBlock> transformer;
    private readonly Sequential mlp_head;

    /// <summary>Creates the model; all parameters are on the CPU until you call <c>.to(device)</c>.</summary>
    /// <exception cref="ArgumentException">Sizes that do not fit (see <see cref="VisionTransformerConfig.Validate"/>).</exception>
    public VisionTransformer(VisionTransformerConfig config) : base(nameof(VisionTransformer))
    {
        config.Validate();
        Config = config;
        long E = config.EmbedDim;
        input_layer = nn.Linear(config.NumChannels * config.PatchSize * config.PatchSize, E);
        // Small random CLS and positions (ViT/timm use std 0.02): a unit-variance start would drown the
        // patch embeddings, which begin at roughly unit scale themselves.
        cls_token = nn.Parameter(randn(1, 1, E) * 0.02);
        pos_embedding = nn.Parameter(randn(1, 1 + config.NumPatches, E) * 0.02);
        dropout = nn.Dropout(config.Dropout);
        transformer = nn.ModuleList(Enumerable.Range(0, (int)config.NumLayers)
            .Select(_ => new AttentionBlock(E, config.HiddenDim, config.NumHeads, config.Dropout, config.PreNorm))
            .ToArray());
        mlp_head = nn.Sequential(("0", nn.LayerNorm(new[] { E })), ("1", nn.Linear(E, config.NumClasses)));
        RegisterComponents();
    }

    /// <summary>The sizes this model was built with.</summary>
    public VisionTransformerConfig Config { get; }

    /// <summary>Classifies <c>[B x C x H x W]</c> images: <c>[B x NumClasses]</c> logits.</summary>
    public override Tensor forward(Tensor images) => Forward(images, withAttention: false).Logits;

    /// <summary>
    /// Classifies and returns every block's attention weights from the same pass: one <c>[B x L x L]</c>
    /// tensor per layer (averaged over heads), L = 1 + NumPatches, token 0 = CLS, tokens 1.. = patches in row-major order.
    /// </summary>
    public (Tensor Logits, Tensor[] Attention) forward_with_attention(Tensor images)
    {
        var (logits, attention) = Forward(images, withAttention: true);
        return (logits, attention!);
    }

    private (Tensor Logits, Tensor[]? Attention) Forward(Tensor images, bool withAttention)
    {
        var c = Config;
        if (images.dim() != 4 || images.shape[1] != c.NumChannels || images.shape[2] != c.ImageSize || images.shape[3] != c.ImageSize)
            throw new ArgumentException(
                $"VisionTransformer expects images [B x {c.NumChannels} x {c.ImageSize} x {c.ImageSize}], got [{string.Join(" x ", images.shape)}].",
                nameof(images));

        using var scope = NewDisposeScope();
        long B = images.shape[0];
        var x = Patches.ImgToPatch(images, c.PatchSize);          // [B x N x (C·p·p)]
        x = input_layer.call(x);                                  // [B x N x E]
        x = cat(new[] { cls_token.expand(B, 1, c.EmbedDim), x }, 1); // [B x (1+N) x E]
        x = dropout.call(x.add(pos_embedding, Runtime.Scalars.OneL)); // held alpha: Runtime/Scalars
        x = x.transpose(0, 1);                                    // [L x B x E]: the blocks are sequence-first

        var attention = withAttention ? new Tensor[transformer.Count] : null;
        for (int i = 0; i < transformer.Count; i++)
        {
            if (attention is null) { x = transformer[i].call(x); continue; }
            (x, attention[i]) = transformer[i].forward_with_weights(x); // attention[i]: [B x L x L]
        }
        var logits = mlp_head.call(x[0]);                         // CLS token [B x E] -> [B x NumClasses]
        if (attention is not null) foreach (var a in attention) a.MoveToOuterDisposeScope();
        return (logits.MoveToOuterDisposeScope(), attention);
    }
}

using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DetSeg.Attention;

/// <summary>
/// One transformer encoder layer, as in the course's "Designing Attention Blocks for Vision Transformer":
/// multi-head self-attention and a two-layer MLP, each with a residual connection and a LayerNorm,
/// in either order (Xiong et al. 2020, "On Layer Normalization in the Transformer Architecture").
/// </summary>
/// <remarks>
/// <para>Pre-LN (default): <c>x = x + Attn(LN1(x)); x = x + MLP(LN2(x))</c>.</para>
/// <para>Post-LN (the original Transformer): <c>x = LN1(x + Attn(x)); x = LN2(x + MLP(x))</c>.</para>
/// <para>MLP = Linear(embedDim, hiddenDim) → GELU → Dropout → Linear(hiddenDim, embedDim) → Dropout.</para>
/// <para>Layout: the input and output are <c>[L x B x E]</c> (sequence first), because TorchSharp's
/// <c>nn.MultiheadAttention</c> has no <c>batch_first</c> switch; this is also PyTorch's default layout
/// and the course's. <see cref="VisionTransformer"/> does the transpose once, not per block.</para>
/// <para>Submodule names follow the course (<c>LN1</c>, <c>attn</c>, <c>LN2</c>, <c>linear</c>), so
/// <c>state_dict()</c> keys read like PyTorch's: <c>attn.in_proj_weight</c>, <c>linear.0.weight</c>, ...</para>
/// </remarks>
public sealed class AttentionBlock : nn.Module<Tensor, Tensor>
{
    private readonly LayerNorm LN1;
    private readonly MultiheadAttention attn;
    private readonly LayerNorm LN2;
    private readonly Sequential linear;

    /// <summary>Creates the block.</summary>
    /// <param name="embedDim">Dimensionality of the input and of the attention features (E).</param>
    /// <param name="hiddenDim">Dimensionality of the MLP's hidden layer.</param>
    /// <param name="numHeads">Number of attention heads; must divide <paramref name="embedDim"/>.</param>
    /// <param name="dropout">Dropout on the attention weights and in the MLP (0 = none).</param>
    /// <param name="preNorm">true: Pre-LN (LayerNorm first in each residual branch); false: Post-LN (LayerNorm after each residual sum).</param>
    /// <exception cref="ArgumentException">A non-positive size, heads that do not divide <paramref name="embedDim"/>, or dropout outside [0, 1).</exception>
    public AttentionBlock(long embedDim, long hiddenDim, long numHeads, double dropout = 0.0, bool preNorm = true)
        : base(nameof(AttentionBlock))
    {
        if (embedDim <= 0) throw new ArgumentException($"embedDim must be positive, got {embedDim}.", nameof(embedDim));
        if (hiddenDim <= 0) throw new ArgumentException($"hiddenDim must be positive, got {hiddenDim}.", nameof(hiddenDim));
        if (numHeads <= 0 || embedDim % numHeads != 0)
            throw new ArgumentException($"numHeads must be positive and divide embedDim={embedDim}, got {numHeads}.", nameof(numHeads));
        if (dropout < 0 || dropout >= 1) throw new ArgumentException($"dropout must be in [0, 1), got {dropout}.", nameof(dropout));

        EmbedDim = embedDim;
        NumHeads = numHeads;
        PreNorm = preNorm;
        LN1 = nn.LayerNorm(new[] { embedDim });
        attn = nn.MultiheadAttention(embedDim, numHeads, dropout: dropout);
        LN2 = nn.LayerNorm(new[] { embedDim });
        linear = nn.Sequential(
            ("0", nn.Linear(embedDim, hiddenDim)),
            ("1", nn.GELU()),
            ("2", nn.Dropout(dropout)),
            ("3", nn.Linear(hiddenDim, embedDim)),
            ("4", nn.Dropout(dropout)));
        RegisterComponents();
    }

    /// <summary>Dimensionality E of the tokens.</summary>
    public long EmbedDim { get; }

    /// <summary>Number of attention heads.</summary>
    public long NumHeads { get; }

    /// <summary>true for Pre-LN, false for Post-LN.</summary>
    public bool PreNorm { get; }

    /// <summary>Applies the block to <c>[L x B x E]</c> tokens.</summary>
    public override Tensor forward(Tensor x) => Forward(x, needWeights: false).Output;

    /// <summary>
    /// Applies the block and also returns its attention weights from the same pass (no second forward):
    /// <c>[B x L x L]</c>, averaged over heads, row <c>i</c> = how much query token <c>i</c> attends to each key.
    /// </summary>
    public (Tensor Output, Tensor Weights) forward_with_weights(Tensor x)
    {
        var (output, weights) = Forward(x, needWeights: true);
        return (output, weights!);
    }

    private (Tensor Output, Tensor? Weights) Forward(Tensor x, bool needWeights)
    {
        if (x.dim() != 3 || x.shape[2] != EmbedDim)
            throw new ArgumentException($"AttentionBlock expects [L x B x E={EmbedDim}] tokens (sequence first), got [{string.Join(" x ", x.shape)}].", nameof(x));

        using var scope = NewDisposeScope();
        Tensor? weights;
        if (PreNorm)
        {
            var h = LN1.call(x);                                 // [L x B x E]
            (var a, weights) = SelfAttention(h, needWeights);
            // add(t, alpha) with a held alpha: `x + a` makes a temporary Scalar (Runtime/Scalars).
            x = x.add(a, Runtime.Scalars.OneL);
            x = x.add(linear.call(LN2.call(x)), Runtime.Scalars.OneL);
        }
        else
        {
            (var a, weights) = SelfAttention(x, needWeights);
            x = LN1.call(x.add(a, Runtime.Scalars.OneL));
            x = LN2.call(x.add(linear.call(x), Runtime.Scalars.OneL));
        }
        weights?.MoveToOuterDisposeScope();
        return (x.MoveToOuterDisposeScope(), weights);
    }

    // Course bug fixed (SEED_ISSUES 'attention_call'): the course calls self.attn(x) with one tensor and adds
    // the (output, weights) tuple to x. Self-attention needs query = key = value = the input, and only the
    // output goes into the residual sum.
    private (Tensor Output, Tensor? Weights) SelfAttention(Tensor h, bool needWeights)
    {
        var (output, weights) = attn.call(h, h, h, null, needWeights, null);
        if (needWeights) return (output, weights);
        weights.Dispose(); // libtorch returns an empty (undefined) tensor when weights are not asked for
        return (output, null);
    }
}

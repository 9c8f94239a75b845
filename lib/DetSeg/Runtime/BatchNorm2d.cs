using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace DetSeg.Runtime;

/// <summary>
/// <c>nn.BatchNorm2d</c> whose training forward creates no temporary <see cref="Scalar"/>.
/// </summary>
/// <remarks>
/// TorchSharp 0.107's <c>BatchNorm2d.forward</c> counts batches with <c>num_batches_tracked.add_(1)</c>: an
/// implicit Scalar plus a hidden <c>alpha = 1</c>, both temporaries that a GC started by another thread
/// (DataLoader workers, the notebook kernel's threads) can finalize while libtorch still reads them — a YOLOv3
/// training died there once with "Expected false to be true" from <c>c10::Scalar::toFloat</c> (see
/// <c>TORCHSHARP-NOTES.md</c>). Here the increment's value and alpha are one Scalar held for the module's life,
/// and <c>functional.batch_norm</c> takes plain doubles. Same maths as PyTorch's module (momentum, the
/// cumulative average for <c>momentum: null</c>, eps, affine, track_running_stats, train/eval) and the same
/// state_dict: <c>weight</c>, <c>bias</c>, <c>running_mean</c>, <c>running_var</c> and an int64
/// <c>num_batches_tracked</c>, so darknet weights and PyTorch .pt/.safetensors files load unchanged.
/// </remarks>
public sealed class BatchNorm2d : nn.Module<Tensor, Tensor>
{
    // The batch counter's step; also passed as alpha, so add_ makes no Scalar of its own.
    private readonly Scalar one = 1L.ToScalar();

    // Component names are PyTorch's state_dict keys; Module.to() finds the fields and properties by them.
    [ComponentName(Name = nameof(weight))] private Parameter? _weight;
    [ComponentName(Name = nameof(bias))] private Parameter? _bias;
    [ComponentName(Name = nameof(running_mean))] private Tensor? _running_mean;
    [ComponentName(Name = nameof(running_var))] private Tensor? _running_var;
    [ComponentName(Name = nameof(num_batches_tracked))] private Tensor? _num_batches_tracked;

    /// <summary>C of the expected [N x C x H x W] input.</summary>
    public long num_features { get; }

    /// <summary>Added to the variance before its square root.</summary>
    public double eps { get; set; }

    /// <summary>Weight of the new batch in the running statistics; null for a cumulative (equal-weight) average.</summary>
    public double? momentum { get; set; }

    /// <summary>Whether <see cref="weight"/> and <see cref="bias"/> exist and are learned.</summary>
    public bool affine { get; }

    /// <summary>Whether running statistics are kept (and used in eval mode).</summary>
    public bool track_running_stats { get; }

    /// <summary>
    /// As <c>nn.BatchNorm2d(num_features, eps, momentum, affine, track_running_stats)</c>: weight 1, bias 0,
    /// running mean 0, running variance 1, no batch counted yet.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A feature count below 1, a negative or non-finite eps, or a momentum outside [0, 1].</exception>
    public BatchNorm2d(long num_features, double eps = 1e-5, double? momentum = 0.1, bool affine = true,
        bool track_running_stats = true, torch.Device? device = null, ScalarType? dtype = null) : base(nameof(BatchNorm2d))
    {
        if (num_features < 1)
            throw new ArgumentOutOfRangeException(nameof(num_features), num_features, "BatchNorm2d needs at least one feature (channel).");
        if (!double.IsFinite(eps) || eps < 0)
            throw new ArgumentOutOfRangeException(nameof(eps), eps, "eps must be finite and not negative.");
        if (momentum is double m && !(m >= 0 && m <= 1))
            throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "momentum must lie in [0, 1] (or be null for a cumulative average).");
        this.num_features = num_features;
        this.eps = eps;
        this.momentum = momentum;
        this.affine = affine;
        this.track_running_stats = track_running_stats;
        // Registered in PyTorch's order, so state_dict keys come out as torch.nn.BatchNorm2d's.
        if (affine)
        {
            weight = new Parameter(ones(num_features, dtype, device));
            bias = new Parameter(zeros(num_features, dtype, device));
        }
        if (track_running_stats)
        {
            running_mean = zeros(num_features, dtype, device);
            running_var = ones(num_features, dtype, device);
            num_batches_tracked = tensor(0L, ScalarType.Int64, device); // int64 whatever dtype, as PyTorch's
        }
    }

    /// <summary>The per-channel scale γ (null without <see cref="affine"/>).</summary>
    public Parameter? weight
    {
        get => _weight;
        set { _weight?.Dispose(); _weight = (Parameter?)value?.DetachFromDisposeScope(); ConditionallyRegisterParameter(nameof(weight), _weight); }
    }

    /// <summary>The per-channel shift β (null without <see cref="affine"/>).</summary>
    public Parameter? bias
    {
        get => _bias;
        set { _bias?.Dispose(); _bias = (Parameter?)value?.DetachFromDisposeScope(); ConditionallyRegisterParameter(nameof(bias), _bias); }
    }

    /// <summary>Running per-channel mean (null without <see cref="track_running_stats"/>).</summary>
    public Tensor? running_mean
    {
        get => _running_mean;
        set { _running_mean?.Dispose(); _running_mean = value?.DetachFromDisposeScope(); ConditionallyRegisterBuffer(nameof(running_mean), _running_mean); }
    }

    /// <summary>Running per-channel unbiased variance (null without <see cref="track_running_stats"/>).</summary>
    public Tensor? running_var
    {
        get => _running_var;
        set { _running_var?.Dispose(); _running_var = value?.DetachFromDisposeScope(); ConditionallyRegisterBuffer(nameof(running_var), _running_var); }
    }

    /// <summary>Training batches seen, an int64 scalar (null without <see cref="track_running_stats"/>).</summary>
    public Tensor? num_batches_tracked
    {
        get => _num_batches_tracked;
        set { _num_batches_tracked?.Dispose(); _num_batches_tracked = value?.DetachFromDisposeScope(); ConditionallyRegisterBuffer(nameof(num_batches_tracked), _num_batches_tracked); }
    }

    /// <summary>Running statistics back to mean 0, variance 1, no batch counted.</summary>
    public void reset_running_stats()
    {
        if (!track_running_stats) return;
        using var _ = no_grad();
        _running_mean!.zero_();
        _running_var!.fill_(Scalars.One);
        _num_batches_tracked!.zero_();
    }

    /// <summary>
    /// [N x C x H x W] to [N x C x H x W]: normalized by the batch's statistics in training mode (updating the
    /// running ones), by the running ones in eval mode; then scaled by <see cref="weight"/> and shifted by <see cref="bias"/>.
    /// </summary>
    /// <exception cref="ArgumentException">An input that is not 4-D or whose channel count is not <see cref="num_features"/>; the message names its shape.</exception>
    public override Tensor forward(Tensor input)
    {
        if (input.ndim != 4 || input.shape[1] != num_features)
            throw new ArgumentException($"BatchNorm2d({num_features}) expects [N x {num_features} x H x W], got [{string.Join(", ", input.shape)}].", nameof(input));
        bool training = this.training;
        // As torch.nn.modules.batchnorm._BatchNorm.forward.
        double factor = momentum ?? 0.0;
        if (training && track_running_stats && _num_batches_tracked is not null)
        {
            using (no_grad()) _num_batches_tracked.add_(one, one);
            if (momentum is null) factor = 1.0 / _num_batches_tracked.item<long>();
        }
        bool useBatchStats = training || (_running_mean is null && _running_var is null);
        bool passStats = !training || track_running_stats;
        var y = nn.functional.batch_norm(input, passStats ? _running_mean : null, passStats ? _running_var : null,
            _weight, _bias, useBatchStats, factor, eps);
        GC.KeepAlive(this); // keeps `one` reachable until add_ has returned even if the caller drops the module
        return y;
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _weight?.Dispose();
            _bias?.Dispose();
            _running_mean?.Dispose();
            _running_var?.Dispose();
            _num_batches_tracked?.Dispose();
            one.Dispose();
        }
        base.Dispose(disposing);
    }
}

namespace DetSeg.Runtime;

/// <summary>How big a notebook run is. Notebooks read it; nothing else differs between profiles.</summary>
public enum ProfileKind
{
    /// <summary>CI: seconds per notebook on tiny data; checks that every cell runs.</summary>
    Smoke,
    /// <summary>Default without a GPU: each notebook under ~10 minutes on 2 cores, with honest results.</summary>
    Cpu,
    /// <summary>Default with CUDA: the course's own settings.</summary>
    Gpu,
}

/// <summary>The active profile: <c>DETSEG_PROFILE</c> (<c>smoke</c>, <c>cpu</c>, <c>gpu</c>), else gpu with CUDA, else cpu.</summary>
public sealed record Profile(ProfileKind Kind)
{
    /// <summary>The environment variable that selects the profile.</summary>
    public const string EnvVar = "DETSEG_PROFILE";

    /// <summary>The profile of this process.</summary>
    public static Profile Current => new(Parse(Environment.GetEnvironmentVariable(EnvVar)));

    /// <summary>Parses a profile name; null or empty picks by device.</summary>
    /// <exception cref="ArgumentException">An unknown name.</exception>
    public static ProfileKind Parse(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        null or "" => Device.IsCuda ? ProfileKind.Gpu : ProfileKind.Cpu,
        "smoke" => ProfileKind.Smoke,
        "cpu" => ProfileKind.Cpu,
        "gpu" => ProfileKind.Gpu,
        _ => throw new ArgumentException($"{EnvVar}='{name}' is not a profile: use smoke, cpu or gpu.", nameof(name)),
    };

    /// <summary>Picks the value for this profile, e.g. <c>Profile.Current.Pick(smoke: 1, cpu: 30, gpu: 30)</c>.</summary>
    public T Pick<T>(T smoke, T cpu, T gpu) => Kind switch
    {
        ProfileKind.Smoke => smoke,
        ProfileKind.Cpu => cpu,
        _ => gpu,
    };

    /// <summary>Whether this is the CI smoke profile.</summary>
    public bool IsSmoke => Kind == ProfileKind.Smoke;

    /// <inheritdoc/>
    public override string ToString() => Kind.ToString().ToLowerInvariant();
}

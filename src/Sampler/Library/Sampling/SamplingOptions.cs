using BlockDance.Cache;

namespace BlockDance.Sampler;

/// <summary>Everything that defines one sampling run except the model.</summary>
public sealed record SamplingOptions
{
    public required IReadOnlyList<int> Classes { get; init; }
    public int Steps { get; init; } = 50;
    public SamplerKind Sampler { get; init; } = SamplerKind.Ddim;
    public Spacing Spacing { get; init; } = Spacing.Even;
    public double Eta { get; init; }
    public float Cfg { get; init; } = 4f;
    public CfgChannels CfgChannels { get; init; } = CfgChannels.Official;
    public ulong Seed { get; init; }
    /// <summary>Samples per model call (before CFG doubling); 0 = all at once.</summary>
    public int Batch { get; init; }
    /// <summary>Creates a fresh cache policy for a run (one per batch).</summary>
    public Func<ICachePolicy> Policy { get; init; } = () => new NoCache();
    /// <summary>Given starting noise (N, C, H, W) instead of the seeded generator.</summary>
    public float[]? InitialNoise { get; init; }
    /// <summary>Given per-step noise (DDPM): step → (N, C, H, W); for reference trajectories.</summary>
    public Func<int, float[]>? StepNoise { get; init; }
    public bool Progress { get; init; }
    /// <summary>Synchronize inside each step to time model and sampler separately (off: no host wait per step).</summary>
    public bool ProfileSteps { get; init; }

    public int EffectiveBatch => Batch <= 0 ? Classes.Count : Math.Min(Batch, Classes.Count);
    public string SamplerName => Sampler == SamplerKind.Ddim ? (Eta == 0 ? "DDIM" : $"DDIM(η={Eta})") : "DDPM";
}

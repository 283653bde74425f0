using BlockDance.Cache;

namespace BlockDance.Sampling;

/// <summary>Everything that defines one sampling run except the model (and, for a model that is not class-conditional,
/// its conditioning: SamplingSession.Run takes it beside the options).</summary>
public sealed record SamplingOptions
{
    /// <summary>The class labels of a class-conditional DiT, one per sample.</summary>
    public IReadOnlyList<int> Classes { get; init; } = [];
    public int Steps { get; init; } = 50;
    public SamplerKind Sampler { get; init; } = SamplerKind.Ddim;
    /// <summary>Which timesteps the sampler visits; null = the sampler's own (Even for DDIM/DDPM, Linspace for DPM-Solver++).</summary>
    public Spacing? Spacing { get; init; }
    /// <summary>DDIM's η (0 = deterministic); the other samplers take none.</summary>
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
    /// <summary>The global index of each sample (sharded generation: sample k's noise depends only on (Seed, k));
    /// null = 0, 1, …, N − 1.</summary>
    public IReadOnlyList<long>? SampleIndices { get; init; }
    /// <summary>Synchronize inside each step to time model and sampler separately (off: no host wait per step).</summary>
    public bool ProfileSteps { get; init; }

    public int EffectiveBatch => BatchFor(Classes.Count);
    /// <summary>Samples per model call for a run of `samples` samples.</summary>
    public int BatchFor(int samples) => Batch <= 0 ? samples : Math.Min(Batch, samples);
    public Spacing EffectiveSpacing => Spacing ?? (Sampler == SamplerKind.DpmSolver2M ? global::BlockDance.Sampling.Spacing.Linspace : global::BlockDance.Sampling.Spacing.Even);
    /// <summary>The timestep schedule of this run.</summary>
    public Schedule Schedule() => new(Steps, EffectiveSpacing);
    public string SamplerName => Sampler switch
    {
        SamplerKind.Ddim => Eta == 0 ? "DDIM" : $"DDIM(η={Eta})",
        SamplerKind.DpmSolver2M => "DPM-Solver++ 2M",
        _ => "DDPM",
    };
}

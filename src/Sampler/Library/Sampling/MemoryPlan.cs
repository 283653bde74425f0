// Device memory, checked before anything is allocated. The need of a sampling run is computed from the
// config alone (every buffer is float32 or int32 and its size is a product of config values):
//   weights   every tensor the DiT reads (pos_embed too: computed when the file does not store it)
//   workspace Workspace's buffers for the model batch M (M = 2B with CFG): x0, x1, norm, attn (N, T, D),
//             qkv (N, T, 3D), MLP hidden (N, T, 4D), adaLN (N, 6D), five (N, D) condition buffers,
//             final tokens (N, T, p²·C_out), t (N), t_freq (N, 256), frequencies (128), labels and rows (N ints)
//   run       the sample x (B, C, H, W), the CFG input (M, C, H, W), the model output (M, C_out, H, W),
//             DDPM/η > 0 step noise (B, C, H, W), the cache feature of BlockDance/Ada (M, T, D)
// The budget is a fraction of what the device has: 90% of a GPU's memory (the CUDA context, the compiled
// kernels and allocator rounding take the rest), 50% of the host's available memory for ILGPU's CPU
// accelerator (the host arrays of the samples and the image share it). BLOCKDANCE_DEVICE_MEMORY_MB states
// the device's size instead (a GPU shared with other jobs; the tests). Over budget, the run is split into
// smaller batches — same samples bit for bit (the noise is counter-based per sample) — and that is logged;
// when not even one sample fits, a DeviceException names the need and the budget.
using BlockDance.Kernels;
using BlockDance.Transformer;

namespace BlockDance.Sampler;

public sealed record MemoryNeed(long WeightBytes, long BufferBytes, int Batch, int ModelBatch)
{
    public long Total => WeightBytes + BufferBytes;
}

public static class MemoryPlan
{
    public const string LimitVariable = "BLOCKDANCE_DEVICE_MEMORY_MB";
    const double GpuShare = 0.9, CpuShare = 0.5;

    public static long WeightBytes(DiTConfig cfg) =>
        4 * ModelValidation.ExpectedTensors(cfg, hasPosEmbed: true).Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));

    /// <summary>Workspace bytes for model batch n (what Workspace allocates).</summary>
    public static long WorkspaceBytes(DiTConfig cfg, int n)
    {
        long t = cfg.Tokens, d = cfg.Hidden, floats =
            4 * n * t * d + 3 * n * t * d + n * t * cfg.MlpHidden     // x0, x1, norm, attn; qkv; MLP hidden
            + 6L * n * d + 5L * n * d                                 // adaLN; t_hidden, t_emb, c, silu_c, silu_c_sub
            + n * t * cfg.Patch * cfg.Patch * cfg.OutChannels         // final tokens
            + n + (long)n * TimestepEmbedding.Dim + TimestepEmbedding.Dim / 2;   // t, t_freq, frequencies
        return 4 * floats + 2 * 4L * n;                               // + labels, rows (int32)
    }

    /// <summary>Everything a run of `batch` samples allocates on the device, weights included.</summary>
    public static MemoryNeed Need(DiTConfig cfg, int batch, bool guided, bool stepNoise, bool cached)
    {
        int m = guided ? 2 * batch : batch;
        long img = (long)cfg.InChannels * cfg.InputSize * cfg.InputSize;
        long run = 4 * (batch * img                                               // x
                        + (guided ? m * img : 0)                                  // [x; x]
                        + (long)m * cfg.OutChannels * cfg.InputSize * cfg.InputSize // model output
                        + (stepNoise ? batch * img : 0)                           // DDPM / DDIM η > 0 noise
                        + (cached ? (long)m * cfg.Tokens * cfg.Hidden : 0));      // the stored block feature
        return new MemoryNeed(WeightBytes(cfg), WorkspaceBytes(cfg, m) + run, batch, m);
    }

    /// <summary>The memory runs on this device may use (see the header).</summary>
    public static long Budget(ComputeDevice dev)
    {
        if (Environment.GetEnvironmentVariable(LimitVariable) is string s)
        {
            if (!long.TryParse(s, out var mb) || mb < 1)
                throw new InvalidValueException(LimitVariable, "a positive number of MiB", $"'{s}'");
            return (long)(mb * 1048576.0 * (dev.IsCuda ? GpuShare : CpuShare));
        }
        return (long)(dev.MemoryBytes * (dev.IsCuda ? GpuShare : CpuShare));
    }

    /// <summary>The options with a batch that fits the device: unchanged when the requested batch fits, else the
    /// largest batch that does (logged); a DeviceException naming need and budget when one sample does not fit.</summary>
    public static SamplingOptions Fit(ComputeDevice dev, DiTConfig cfg, SamplingOptions o, bool cached)
    {
        bool guided = o.Cfg > 1, noise = o.Sampler == SamplerKind.Ddpm || o.Eta > 0;
        long budget = Budget(dev);
        var need = Need(cfg, o.EffectiveBatch, guided, noise, cached);
        Console.WriteLine($"memory: {MiB(need.Total)} of device memory (weights {MiB(need.WeightBytes)}, buffers {MiB(need.BufferBytes)} " +
                          $"for batch {need.Batch}, model batch {need.ModelBatch}); budget {MiB(budget)}");
        if (need.Total <= budget) return o;
        var one = Need(cfg, 1, guided, noise, cached);
        if (one.Total > budget)
            throw new DeviceException($"out of device memory: expected at most {MiB(budget)} ({Describe(dev)}), found a need of {MiB(one.Total)} " +
                                      $"for one sample (weights {MiB(one.WeightBytes)}, buffers {MiB(one.BufferBytes)})");
        int lo = 1, hi = o.EffectiveBatch;          // largest batch that fits: lo fits, hi does not
        while (hi - lo > 1)
        {
            int mid = lo + (hi - lo) / 2;
            if (Need(cfg, mid, guided, noise, cached).Total <= budget) lo = mid; else hi = mid;
        }
        Log.Info($"batch {o.EffectiveBatch} needs {MiB(need.Total)} of device memory, more than the budget of {MiB(budget)}: " +
                 $"sampling in batches of {lo} ({MiB(Need(cfg, lo, guided, noise, cached).Total)}; same samples)");
        return o with { Batch = lo };
    }

    internal static string Describe(ComputeDevice dev) =>
        Environment.GetEnvironmentVariable(LimitVariable) is string s ? $"{LimitVariable}={s}" : $"{(dev.IsCuda ? "90" : "50")}% of {MiB(dev.MemoryBytes)} on {dev.Name}";

    internal static string MiB(long bytes) => $"{bytes / 1048576.0:F1} MiB";
}

// Device memory, checked before anything is allocated. The need of a sampling run is computed from the
// model's footprint (ModelFootprint: its weights and its per-model-batch buffers, from the config and the file
// header alone; every buffer is float32 or int32 and its size is a product of config values):
//   weights   every tensor the model reads (the DiT's pos_embed too: computed when the file does not store it;
//             PixArt-α: every tensor of its file and the position table)
//   workspace Workspace's buffers for the model batch M (M = 2B with CFG): x0, x1, norm, attn (N, T, D),
//             qkv (N, T, 3D), MLP hidden (N, T, 4D), adaLN (N, 6D), five (N, D) condition buffers,
//             final tokens (N, T, p²·C_out), t (N), t_freq (N, 256), frequencies (128), labels and rows (N ints);
//             PixArt-α adds t0 (2 × (N, 6D)), the micro-condition MLP, and per block the captions' keys and
//             values (M captions × L tokens × 2D) with their mask; Open-Sora 1.0's STDiT is the same over its T·S
//             tokens (at 16 × 512²: 72 MiB per (16384 × 1152) buffer per row, the MLP hidden 288 MiB), with t0
//             twice, its frame-major input and output, the caption keys and values per block, and its two sin-cos
//             tables (its GEMM weights counted in 16 bits under bf16/fp16 on CUDA)
//   run       the sample x (B, C, …), the CFG input (M, C, …), the model output (M, C_out, …), DDPM/η > 0 step
//             noise (B, C, …), the cache feature of BlockDance/Ada (M, T, D); … is H, W or T, H, W
// The budget is a fraction of what the device has: 90% of a GPU's memory (the CUDA context, the compiled
// kernels and allocator rounding take the rest), 50% of the host's available memory for ILGPU's CPU
// accelerator (the host arrays of the samples and the image share it). BLOCKDANCE_DEVICE_MEMORY_MB states
// the device's size instead (a GPU shared with other jobs; the tests). Over budget, the run is split into
// smaller batches — same samples bit for bit (the noise is counter-based per sample) — and that is logged;
// when not even one sample fits, a DeviceException names the need and the budget.
using BlockDance.Kernels;
using BlockDance.Transformer;

namespace BlockDance.Sampling;

public sealed record MemoryNeed(long WeightBytes, long BufferBytes, int Batch, int ModelBatch)
{
    public long Total => WeightBytes + BufferBytes;
}

/// <summary>What a model occupies on the device: its weights, and its buffers for a model batch of n rows; Shape is its
/// block stack (the sample and feature sizes of a run).</summary>
public sealed record ModelFootprint(BlockShape Shape, long WeightBytes, Func<int, long> BufferBytes)
{
    /// <summary>Values per channel of one sample: H·W, or T·H·W.</summary>
    public long PerChannel => (long)Math.Max(1, Shape.Frames) * Shape.InputSize * Shape.InputSize;

    /// <summary>A DiT of this config.</summary>
    public static ModelFootprint Of(DiTConfig cfg) => new(cfg.Shape, MemoryPlan.WeightBytes(cfg), n => MemoryPlan.WorkspaceBytes(cfg.Workspace, n));

    /// <summary>PixArt-α: `weightElements` stored values (PixArtWeights.Elements), captions of `captionTokens` tokens.</summary>
    public static ModelFootprint Of(PixArtConfig cfg, long weightElements, int captionTokens)
    {
        long d = cfg.Hidden, pos = (long)cfg.Tokens * d;
        return new(cfg.Shape, 4 * (weightElements + pos), n =>
            MemoryPlan.WorkspaceBytes(cfg.Workspace, n)
            + 4 * (2L * n * 6 * d + 2L * n * Math.Max(1, cfg.MicroWidth) + d + n)                 // t0, t0_sub, micro, ones; caption rows
            + 4 * ((long)n * captionTokens * 2 * d * cfg.Depth + (long)n * captionTokens));      // caption k|v per block, mask
    }

    /// <summary>Open-Sora 1.0's STDiT over captions of `captionTokens` tokens; `halfWeights`: its 2-D GEMM weights are
    /// stored in 16 bits (bf16/fp16 on CUDA).</summary>
    public static ModelFootprint Of(STDiTConfig cfg, int captionTokens, bool halfWeights)
    {
        long weights = 0;
        foreach (var (key, shape) in cfg.ExpectedShapes())
        {
            long n = shape.Aggregate(1L, (a, b) => a * b);
            weights += halfWeights && key.EndsWith(".weight") && shape.Length == 2 ? 2 * n : 4 * n;
        }
        weights += 4L * (cfg.SpatialTokens + cfg.Frames) * cfg.Hidden;                           // the sin-cos tables
        long d = cfg.Hidden, sample = (long)cfg.InChannels * cfg.Frames * cfg.LatentSize * cfg.LatentSize;
        long outSample = sample / cfg.InChannels * cfg.OutChannels;
        return new(cfg.Shape, weights, n =>
            MemoryPlan.WorkspaceBytes(cfg.Workspace, n)
            + 4 * (2L * n * 6 * d + d + n * sample + n * outSample)                              // t0 twice; frame-major in/out
            + 4L * cfg.Depth * n * captionTokens * 2 * d);                                       // caption k|v per block
    }
}

public static class MemoryPlan
{
    public const string LimitVariable = "BLOCKDANCE_DEVICE_MEMORY_MB";
    const double GpuShare = 0.9, CpuShare = 0.5;

    public static long WeightBytes(DiTConfig cfg) =>
        4 * ModelValidation.ExpectedTensors(cfg, hasPosEmbed: true).Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));

    /// <summary>Workspace bytes of a DiT for model batch n.</summary>
    public static long WorkspaceBytes(DiTConfig cfg, int n) => WorkspaceBytes(cfg.Workspace, n);

    /// <summary>Workspace bytes for model batch n (what Workspace allocates).</summary>
    public static long WorkspaceBytes(WorkspaceShape cfg, int n)
    {
        long t = cfg.Tokens, d = cfg.Hidden, floats =
            4 * n * t * d + 3 * n * t * d + n * t * cfg.MlpHidden     // x0, x1, norm, attn; qkv; MLP hidden
            + 6L * n * d + 5L * n * d                                 // adaLN; t_hidden, t_emb, c, silu_c, silu_c_sub
            + n * t * cfg.FinalPerToken                               // final tokens
            + n + (long)n * TimestepEmbedding.Dim + TimestepEmbedding.Dim / 2;   // t, t_freq, frequencies
        return 4 * floats + 2 * 4L * n;                               // + labels, rows (int32)
    }

    /// <summary>Everything a run of `batch` samples allocates on the device, weights included.</summary>
    public static MemoryNeed Need(DiTConfig cfg, int batch, bool guided, bool stepNoise, bool cached) =>
        Need(ModelFootprint.Of(cfg), batch, guided, stepNoise, cached);

    public static MemoryNeed Need(ModelFootprint model, int batch, bool guided, bool stepNoise, bool cached)
    {
        var cfg = model.Shape;
        int m = guided ? 2 * batch : batch;
        long img = cfg.InChannels * model.PerChannel;
        long run = 4 * (batch * img                                               // x
                        + (guided ? m * img : 0)                                  // [x; x]
                        + (long)m * cfg.OutChannels * model.PerChannel            // model output
                        + (stepNoise ? batch * img : 0)                           // DDPM / DDIM η > 0 noise
                        + (cached ? (long)m * cfg.Tokens * cfg.Hidden : 0));      // the stored block feature
        return new MemoryNeed(model.WeightBytes, model.BufferBytes(m) + run, batch, m);
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
    public static SamplingOptions Fit(ComputeDevice dev, DiTConfig cfg, SamplingOptions o, bool cached) =>
        Fit(dev, ModelFootprint.Of(cfg), o, o.Classes.Count, cached);

    /// <summary>The same for any model's footprint and a run of `samples` samples.</summary>
    public static SamplingOptions Fit(ComputeDevice dev, ModelFootprint cfg, SamplingOptions o, int samples, bool cached)
    {
        bool guided = o.Cfg > 1, noise = o.Sampler == SamplerKind.Ddpm || o.Eta > 0;
        long budget = Budget(dev);
        int batch = o.BatchFor(samples);
        var need = Need(cfg, batch, guided, noise, cached);
        Console.WriteLine($"memory: {MiB(need.Total)} of device memory (weights {MiB(need.WeightBytes)}, buffers {MiB(need.BufferBytes)} " +
                          $"for batch {need.Batch}, model batch {need.ModelBatch}); budget {MiB(budget)}");
        if (need.Total <= budget) return o;
        var one = Need(cfg, 1, guided, noise, cached);
        if (one.Total > budget)
            throw new DeviceException($"out of device memory: expected at most {MiB(budget)} ({Describe(dev)}), found a need of {MiB(one.Total)} " +
                                      $"for one sample (weights {MiB(one.WeightBytes)}, buffers {MiB(one.BufferBytes)})");
        int lo = 1, hi = batch;          // largest batch that fits: lo fits, hi does not
        while (hi - lo > 1)
        {
            int mid = lo + (hi - lo) / 2;
            if (Need(cfg, mid, guided, noise, cached).Total <= budget) lo = mid; else hi = mid;
        }
        Log.Info($"batch {batch} needs {MiB(need.Total)} of device memory, more than the budget of {MiB(budget)}: " +
                 $"sampling in batches of {lo} ({MiB(Need(cfg, lo, guided, noise, cached).Total)}; same samples)");
        return o with { Batch = lo };
    }

    internal static string Describe(ComputeDevice dev) =>
        Environment.GetEnvironmentVariable(LimitVariable) is string s ? $"{LimitVariable}={s}" : $"{(dev.IsCuda ? "90" : "50")}% of {MiB(dev.MemoryBytes)} on {dev.Name}";

    internal static string MiB(long bytes) => $"{bytes / 1048576.0:F1} MiB";
}

// Device memory of an Open-Sora 1.0 STDiT run, checked before anything is allocated (MemoryPlan's rules and budget):
//   weights    every tensor STDiTConfig.ExpectedShapes lists (fp32; the GEMM weights in 16 bits under bf16/fp16 on
//              CUDA) plus the two sin-cos tables
//   workspace  the DiT workspace over T·S tokens for the model batch M (M = 2B with CFG; at 16 × 512²: 72 MiB per
//              (16384 × 1152) buffer per row, the MLP hidden 288 MiB), t0 twice, the frame-major input and output
//   captions   per block the (C, L, 2D) cross-attention keys/values of the caption set (C = M rows at most)
//   run        x, [x; x], the model output, the step noise, the cache feature of BlockDance (M, T·S, D)
// All videos of a run share one model batch: when it does not fit, one line names the need and the budget
// (no silent split: fewer prompts per run, bf16, or a smaller --frames/--image-size).
using BlockDance.Kernels;
using BlockDance.Transformer;

namespace BlockDance.Sampler;

public static class VideoMemoryPlan
{
    public static MemoryNeed Need(STDiTConfig cfg, int batch, bool guided, bool stepNoise, bool cached, int captionTokens, Precision precision, bool cuda)
    {
        int m = guided ? 2 * batch : batch;
        bool half = cuda && precision != Precision.Fp32;
        long weights = 0;
        foreach (var (key, shape) in cfg.ExpectedShapes())
        {
            long n = shape.Aggregate(1L, (a, b) => a * b);
            weights += half && key.EndsWith(".weight") && shape.Length == 2 ? 2 * n : 4 * n;
        }
        weights += 4L * (cfg.SpatialTokens + cfg.Frames) * cfg.Hidden;
        long sample = (long)cfg.InChannels * cfg.Frames * cfg.LatentSize * cfg.LatentSize, outSample = sample / cfg.InChannels * cfg.OutChannels;
        long extras = 4 * (2L * m * 6 * cfg.Hidden + cfg.Hidden + m * sample + m * outSample);
        long captions = 4L * cfg.Depth * m * captionTokens * 2 * cfg.Hidden;
        long run = 4 * (batch * sample + (guided ? m * sample : 0) + m * outSample + (stepNoise ? batch * sample : 0)
                        + (cached ? (long)m * cfg.Tokens * cfg.Hidden : 0));
        return new MemoryNeed(weights, MemoryPlan.WorkspaceBytes(cfg.Stack, m) + extras + captions + run, batch, m);
    }

    /// <summary>Prints the need and throws a DeviceException naming need and budget when it does not fit.</summary>
    public static void Check(ComputeDevice dev, STDiTConfig cfg, SamplingOptions o, bool cached, int captionTokens)
    {
        bool guided = o.Cfg > 1, noise = o.Sampler == SamplerKind.Ddpm || o.Eta > 0;
        var need = Need(cfg, o.Classes.Count, guided, noise, cached, captionTokens, dev.Precision, dev.IsCuda);
        long budget = MemoryPlan.Budget(dev);
        Console.WriteLine($"memory: {MemoryPlan.MiB(need.Total)} of device memory (weights {MemoryPlan.MiB(need.WeightBytes)}, buffers " +
                          $"{MemoryPlan.MiB(need.BufferBytes)} for {need.Batch} video(s), model batch {need.ModelBatch}); budget {MemoryPlan.MiB(budget)}");
        if (need.Total > budget)
            throw new DeviceException($"out of device memory: expected at most {MemoryPlan.MiB(budget)} ({MemoryPlan.Describe(dev)}), found a need of " +
                                      $"{MemoryPlan.MiB(need.Total)} for {need.Batch} video(s) of {cfg.Frames} × {cfg.ImageSize}² (weights {MemoryPlan.MiB(need.WeightBytes)}, " +
                                      $"buffers {MemoryPlan.MiB(need.BufferBytes)}): fewer prompts per run, --precision bf16, or smaller --frames/--image-size");
    }
}

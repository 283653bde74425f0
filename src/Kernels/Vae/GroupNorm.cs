// GroupNorm (Wu & He 2018) over NCHW with per-channel affine, optionally fused with SiLU:
//   for each sample b and group g (channels g·C/G … (g+1)·C/G − 1, all H·W pixels):
//     y = (x − mean) / √(var + eps) · gamma[c] + beta[c]        (biased variance)
//     y = SiLU(y) when silu is set (ResnetBlock2D's norm → SiLU, conv_norm_out → SiLU)
// The VAE uses 32 groups and eps 1e-6 (diffusers' AutoencoderKL defaults). In NCHW a group is one
// contiguous range of (C/G)·H·W elements, so the statistics are a plain reduction over a range.
//
// Versions
//   v1 (this file): two launches, grid-stride, no shared memory, no barriers.
//     1. Stats: the group's range is cut into chunks of ChunkElements (at most MaxChunks per group, so a
//        256×256 VAE stage still gets enough parallel work on a GPU); one work item per (b, g, chunk)
//        computes the chunk's mean and M2 = Σ(x − mean)² in two passes (no E[x²] − E[x]² cancellation).
//     2. Normalize: one work item per (b, g, chunk) first merges its group's chunk statistics (Chan et
//        al.'s pairwise update, a few dozen reads) and then normalizes its own chunk.
//     The chunk count depends only on the shape, not the device, so CPU and GPU sum in the same order.
//   host (GroupNormHost.cs): the host backend's version, one work item per (b, g), Vector256, no scratch.
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static class GroupNorm
{
    public const float DefaultEps = 1e-6f;
    public const int ChunkElements = 4096;
    public const int MaxChunks = 64;

    /// <summary>Chunks each group's range is split into for the statistics pass.</summary>
    public static int ChunksPerGroup(long groupSize) => (int)Math.Clamp((groupSize + ChunkElements - 1) / ChunkElements, 1, MaxChunks);

    /// <summary>Floats of scratch Run needs: (count, mean, M2) per (b, g, chunk).</summary>
    public static long ScratchLength(int batch, int channels, long hw, int groups) =>
        3L * batch * groups * ChunksPerGroup(channels / groups * hw);

    // ---------------------------------------------------------------- reference
    public static void Reference(float[] x, float[] gamma, float[] beta, float[] y, int batch, int channels, int hw,
        int groups, float eps = DefaultEps, bool silu = false)
    {
        int cg = channels / groups;
        long n = (long)cg * hw;
        for (int b = 0; b < batch; b++)
            for (int g = 0; g < groups; g++)
            {
                long o = ((long)b * channels + g * cg) * hw;
                double mean = 0, var = 0;
                for (long i = 0; i < n; i++) mean += x[o + i];
                mean /= n;
                for (long i = 0; i < n; i++) { double e = x[o + i] - mean; var += e * e; }
                var /= n;
                double rstd = 1.0 / Math.Sqrt(var + eps);
                for (long i = 0; i < n; i++)
                {
                    int c = g * cg + (int)(i / hw);
                    float v = (float)((x[o + i] - mean) * rstd) * gamma[c] + beta[c];
                    y[o + i] = silu ? Activations.Silu(v) : v;
                }
            }
    }

    // ---------------------------------------------------------------- kernels v1
    static void StatsKernel(Index1D index, ArrayView<float> x, ArrayView<float> stats, int batchGroups, long groupSize,
        int chunks, int width)
    {
        long chunkLen = (groupSize + chunks - 1) / chunks;
        long items = (long)batchGroups * chunks;
        for (long it = index; it < items; it += width)
        {
            long bg = it / chunks;
            int ch = (int)(it % chunks);
            long start = ch * chunkLen;
            long end = IntrinsicMath.Min(start + chunkLen, groupSize);
            long o = bg * groupSize;
            float sum = 0;
            for (long i = start; i < end; i++) sum += x[o + i];
            float count = end > start ? end - start : 0;
            float mean = count > 0 ? sum / count : 0f;
            float m2 = 0;
            for (long i = start; i < end; i++) { float e = x[o + i] - mean; m2 += e * e; }
            stats[it * 3] = count;
            stats[it * 3 + 1] = mean;
            stats[it * 3 + 2] = m2;
        }
    }

    static void NormalizeKernel(Index1D index, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> y, ArrayView<float> stats, int batchGroups, int groups, int cg, long hw, int chunks, float eps,
        int silu, int width)
    {
        long groupSize = cg * hw;
        long chunkLen = (groupSize + chunks - 1) / chunks;
        long items = (long)batchGroups * chunks;
        for (long it = index; it < items; it += width)
        {
            long bg = it / chunks;
            int ch = (int)(it % chunks);
            // Merge the group's chunk statistics: (n, mean, M2) ⊕ (nb, meanb, M2b).
            long s0 = bg * chunks * 3;
            float n = stats[s0], mean = stats[s0 + 1], m2 = stats[s0 + 2];
            for (int k = 1; k < chunks; k++)
            {
                float nb = stats[s0 + 3 * k], meanb = stats[s0 + 3 * k + 1], m2b = stats[s0 + 3 * k + 2];
                float tot = n + nb;
                if (nb <= 0) continue;
                float delta = meanb - mean;
                mean += delta * (nb / tot);
                m2 += m2b + delta * delta * (n * nb / tot);
                n = tot;
            }
            float rstd = 1f / MathF.Sqrt(m2 / n + eps);
            int g = (int)(bg % groups);
            long o = bg * groupSize;
            long start = ch * chunkLen;
            long end = IntrinsicMath.Min(start + chunkLen, groupSize);
            for (long i = start; i < end; i++)
            {
                int c = g * cg + (int)(i / hw);
                float v = (x[o + i] - mean) * rstd * gamma[c] + beta[c];
                y[o + i] = silu != 0 ? Activations.Silu(v) : v;
            }
        }
    }

    // ---------------------------------------------------------------- launcher
    /// <summary>y (batch, channels, hw) = [SiLU](GroupNorm(x)); scratch holds at least ScratchLength(...) floats.
    /// y may be x (in place).</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> y,
        ArrayView<float> scratch, int batch, int channels, long hw, int groups, float eps = DefaultEps, bool silu = false)
    {
        if (groups <= 0 || channels % groups != 0)
            throw new ArgumentException($"groupnorm: {channels} channels cannot be split into {groups} groups");
        long total = batch * channels * hw;
        Check.Size("groupnorm x", x.Length, total);
        Check.Size("groupnorm y", y.Length, total);
        Check.Size("groupnorm gamma", gamma.Length, channels);
        Check.Size("groupnorm beta", beta.Length, channels);
        Check.Size("groupnorm scratch", scratch.Length, ScratchLength(batch, channels, hw, groups));
        if (dev.IsHost) { GroupNormHost.Run(dev, x, gamma, beta, y, batch, channels, hw, groups, eps, silu); return; }
        int cg = channels / groups, batchGroups = batch * groups;
        long groupSize = cg * hw;
        int chunks = ChunksPerGroup(groupSize);
        int width = dev.LaunchWidth((long)batchGroups * chunks);
        dev.Kernels.Get("groupnorm_stats_v1", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>,
                int, long, int, int>(StatsKernel))
            (width, x, scratch, batchGroups, groupSize, chunks, width);
        dev.Kernels.Get("groupnorm_normalize_v1", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, long, int, float, int, int>(NormalizeKernel))
            (width, x, gamma, beta, y, scratch, batchGroups, groups, cg, hw, chunks, eps, silu ? 1 : 0, width);
    }
}

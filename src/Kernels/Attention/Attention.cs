// Multi-head self-attention over a packed qkv tensor, online softmax (flash-style):
//   qkv (N, T, 3D) = [q | k | v], head h owns dims h·hd … (h+1)·hd−1 inside each D-block
//   out (N, T, D)  = concat_h softmax(q_h · k_hᵀ · scale) · v_h,  scale = 1/√hd by default
// The T×T score matrix never exists in memory: each query row keeps a running max m, a running
// denominator l and its output accumulator, rescaled by exp(m_old − m_new) when the max grows.
//
// v1: one work item per (n, h, query) row; the accumulator is the output row itself (owned by the
//     work item), so there is no shared memory and no barrier and any head dim works (XL: 72). The row itself is
//     AttentionRow's, shared with the relative-bias and cross-attention v1 kernels (each with its own keys struct).
// v2 (AttentionV2.cs, fp32): FlashAttention-2 tiling — K/V tiles in shared memory, q, o, max and sum
//     in registers; head dim ≤ 768.
// v3 (AttentionV3.cs, bf16 tensor cores): the same tiling on mma.sync m16n8k16, P kept in registers as
//     the A operand of P·V; head dim a multiple of 8, ≤ 80.
//
// host (AttentionHost.cs, the host backend `--device cpu`): flash-style blocks of 32 queries × 64 keys,
//     Vector256/FMA, Vector256.Exp; any head dim (the VAE's 512 too).
//
// Run picks the version for the device: the host backend runs the host version; CUDA runs v3 when the
// precision is bf16 or fp16 (bf16 operands in both cases), the GPU has bf16 mma (sm_80 on) and the head dim
// allows it, else v2 (head dims up to 768), else v1 — every step down logged once; the simulator (`sim`)
// runs v1. KernelName says which kernel a launch counts under (tests that count launches ask it).
// RunVersion runs a named version (tests, kernel harness); version 0 is the host version.
using BlockDance.Kernels.Harness;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static class Attention
{
    /// <summary>The plain reference (AttentionReference, no options).</summary>
    public static void Reference(float[] qkv, float[] o, int n, int t, int heads, int hd, float scale) =>
        AttentionReference.SelfAttention(qkv, o, n, t, heads, hd, scale);

    /// <summary>Self-attention's keys: every key of the row's own qkv (k at D, v at 2D inside each 3D-block), score q·k·scale.</summary>
    readonly struct SelfKeys(long rowBase, int d) : IAttentionKeys
    {
        readonly long first = rowBase + d;   // k of key 0
        readonly int stride = 3 * d;
        public long Key(int j) => first + (long)j * stride;
        public bool Keep(int j) => true;
        public float Score(float scaled, int j) => scaled;
        public float Finish(float l) => 1f / l;
    }

    [GpuKernel("attention_v1")]
    static void Kernel(Index1D index, ArrayView<float> qkv, ArrayView<float> o, int n, int t, int heads, int hd, float scale, int width)
    {
        int d = heads * hd;
        long rows = (long)n * heads * t;
        for (long r = index; r < rows; r += width)
        {
            AttentionRow.Split(r, t, heads, out int b, out int h, out int i);
            long q = ((long)b * t + i) * 3 * d + h * hd;
            long outRow = ((long)b * t + i) * d + h * hd;
            AttentionRow.Run(qkv, q, qkv, o, outRow, t, d, hd, scale, new SelfKeys((long)b * t * 3 * d + h * hd, d));
        }
    }

    /// <summary>The kernel name a host-backend launch counts under (KernelCache).</summary>
    public const string HostKernel = "attention_host";

    /// <summary>o (n, t, heads·hd) = attention(qkv (n, t, 3·heads·hd)) with the best version for the device.
    /// `precision` Bf16/Fp16 allows the tensor-core version where one exists.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> qkv, ArrayView<float> o, int n, int t, int heads, int hd, float scale,
        Precision precision = Precision.Fp32)
    {
        int version = Choose(dev, hd, precision);
        if (version == 3 && !Chunks.Aligned16(qkv))
        {
            KernelChoice.Once("attention: qkv view not 16-byte aligned: fp32 v2 instead of the bf16 tensor-core v3 (slower)");
            version = 2;
        }
        RunVersion(dev, version, qkv, o, n, t, heads, hd, scale);
    }

    /// <summary>The name of the kernel Run launches for these arguments ("attention_host", "attention_v1", …),
    /// as KernelCache counts it (an unaligned qkv view, which makes Run step down from v3, aside).</summary>
    public static string KernelName(ComputeDevice dev, int hd, Precision precision = Precision.Fp32) =>
        Choose(dev, hd, precision) switch { 0 => HostKernel, 3 => "attention_v3_bf16", var v => $"attention_v{v}" };

    /// <summary>The version Run uses: 0 (host) on the host backend, 1 on the simulator; on CUDA 3 (bf16/fp16
    /// precision, sm_80 or newer, hd % 8 == 0, hd ≤ 80), else 2 (hd ≤ 768), else 1 (each choice logged once).</summary>
    public static int Choose(ComputeDevice dev, int hd, Precision precision)
    {
        if (dev.IsHost) return 0;
        if (!dev.IsCuda) return 1;
        if (precision != Precision.Fp32)
        {
            if (!AttentionV3.SupportsDevice(dev))
                KernelChoice.Once($"attention: {dev.Name} is older than sm_80 (no bf16 mma.sync, no cvt.rn.bf16x2): fp32 kernels instead of the bf16 tensor-core v3");
            else if (AttentionV3.Supports(hd))
            {
                KernelChoice.Once($"attention: v3 (bf16 tensor cores{(precision == Precision.Fp16 ? "; fp16 precision also runs attention in bf16" : "")}) on {dev.Name}, head dim {hd}");
                return 3;
            }
            else
                KernelChoice.Once($"attention: head dim {hd} is not a multiple of 8 ≤ {AttentionV3.MaxHeadDim}: fp32 kernels instead of the bf16 tensor-core v3 (slower)");
        }
        if (hd <= AttentionV2.MaxHeadDim)
        {
            KernelChoice.Once($"attention: v2 (fp32 flash tiles) on {dev.Name}, head dim {hd}");
            return 2;
        }
        KernelChoice.Once($"attention: v1 (one thread per row, slower) for head dim {hd}: v2 handles head dims up to {AttentionV2.MaxHeadDim}");
        return 1;
    }

    public static void RunVersion(ComputeDevice dev, int version, ArrayView<float> qkv, ArrayView<float> o, int n, int t, int heads, int hd, float scale)
    {
        switch (version)
        {
            case 0: AttentionHost.Run(dev, qkv, o, n, t, heads, hd, scale); break;
            case 1: RunV1(dev, qkv, o, n, t, heads, hd, scale); break;
            case 2: AttentionV2.Run(dev, qkv, o, n, t, heads, hd, scale); break;
            case 3: AttentionV3.Run(dev, qkv, o, n, t, heads, hd, scale); break;
            default: throw new ArgumentOutOfRangeException(nameof(version), $"attention: expected version 0 (host), 1, 2 or 3, found {version}");
        }
    }

    /// <summary>The v1 kernel: one work item per (n, h, query) row.</summary>
    public static void RunV1(ComputeDevice dev, ArrayView<float> qkv, ArrayView<float> o, int n, int t, int heads, int hd, float scale)
    {
        Check.Size("attention qkv", qkv.Length, 3L * n * t * heads * hd);
        Check.Size("attention out", o.Length, (long)n * t * heads * hd);
        int width = dev.LaunchWidth((long)n * heads * t);
        dev.Kernels.Get("attention_v1", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>,
                int, int, int, int, float, int>(Kernel))
            (width, qkv, o, n, t, heads, hd, scale, width);
    }

    public static long Flops(long n, long t, long heads, long hd) => 4 * n * heads * t * t * hd;
}

// Attention v2 (fp32 flash tiles), v3 (bf16 mma.sync; emulated per lane on the CPU accelerator) and the
// dispatcher against the references, on every backend.
// Tiny shapes (the CPU accelerator simulates every thread): head dim 72 (XL), ragged T (not a multiple
// of the key tile: 8 keys per tile on the CPU accelerator's one-warp groups, 64 on CUDA), head dims that
// need 8 and 32 threads per row (hd > 96, the VAE's 512). DiT attention is unmasked, so every case is mask-free.
// Tolerance: fp32 with a float64 reference over ≤ 70 keys: 1e-5 absolute + 1e-5 relative, as v1.
using BlockDance.Kernels;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class AttentionVersionTests(ITestOutputHelper output)
{
    static Tensor Up(ComputeDevice dev, float[] a) => Tensor.FromHost(dev, "t", a, a.Length);

    static float[] RunVersion(ComputeDevice dev, int version, float[] qkv, int n, int t, int heads, int hd)
    {
        using var tq = Up(dev, qkv); using var to = Tensor.Allocate(dev, "o", n * t * heads * hd);
        Attention.RunVersion(dev, version, tq.View, to.View, n, t, heads, hd, 1f / MathF.Sqrt(hd));
        return to.ToHost();
    }

    [SkippableTheory]
    [InlineData("sim", 0, 1, 16, 1, 72)]    // XL head dim, T a multiple of the CPU key tile (8)
    [InlineData("sim", 1, 2, 11, 2, 72)]    // ragged T: a last tile of 3 keys, last query tile partial
    [InlineData("sim", 2, 1, 7, 1, 24)]     // demo head dim, T shorter than one tile
    [InlineData("sim", 3, 1, 9, 1, 130)]    // hd > 96: 8 threads per row, padded register chunks
    [InlineData("sim", 4, 1, 5, 1, 512)]    // the VAE's head: 32 threads per row, 1 query and 1 key per CPU tile
    [InlineData("cuda", 0, 2, 256, 16, 72)] // XL shape at T = 256
    [InlineData("cuda", 1, 1, 100, 3, 72)]  // ragged T on 64-key tiles
    [InlineData("cuda", 2, 1, 70, 2, 192)]  // 8 threads per row
    [InlineData("cuda", 3, 1, 40, 1, 768)]  // the largest head dim v2 takes
    public void AttentionV2_MatchesReference(string kind, int seed, int n, int t, int heads, int hd)
    {
        var dev = TestDevices.Get(kind);
        var qkv = Tolerance.Random(seed, 3 * n * t * heads * hd, 2f);
        var expected = new float[n * t * heads * hd];
        Attention.Reference(qkv, expected, n, t, heads, hd, 1f / MathF.Sqrt(hd));
        Tolerance.AssertClose(expected, RunVersion(dev, 2, qkv, n, t, heads, hd), 1e-5, 1e-5, $"attention v2 t{t} h{heads} hd{hd}", output);
    }

    // v3 rounds q, k, v and P to bf16 (8 significant bits, relative step 2⁻⁸). Against AttentionV3.ReferenceBf16
    // (same operand rounding, P rounded against the final row max instead of the running one): the only
    // difference is where P rounds, ≤ 2⁻⁹ of each weight, so |Δo| ≤ 2⁻⁹·max|v| = 4e-3 for |v| ≤ 2.
    // Against the fp32 Attention.Reference: the score error from rounding q and k (~2⁻⁹·√hd·|q||k|·scale) moves
    // the weights by ~1%: 3e-2 absolute for O(1) outputs. An indexing error moves outputs by O(1).
    [SkippableTheory]
    // (the emulated mma costs ~0.1 s per call on the CPU accelerator: one query tile of 16 rows × one 64-key
    // tile at hd 72 is 76 of them, so the CPU cases are few and small)
    [InlineData("sim", 0, 1, 16, 1, 72)]    // XL head dim: 5 k16 steps (72 padded to 80), 9 n-tiles; 16 of 64 keys real
    [InlineData("sim", 1, 1, 70, 1, 8)]     // ragged T: 2 key tiles (64 + 6), a last query tile of 6 rows
    [InlineData("sim", 2, 1, 9, 1, 24)]     // hd 24: 2 k16 steps (padded to 32), 3 n-tiles (odd count: the ldmatrix .x2 path)
    [InlineData("cpu-tiled", 3, 1, 20, 1, 8)]   // 8 warps per group available, 1 group: the 4-warp groups CUDA runs for small grids
    [InlineData("cpu-tiled", 4, 2, 20, 1, 16)]  // 2 groups ≥ 2 × 1 multiprocessor: the 8-warp groups of a full GPU
    [InlineData("cuda", 0, 2, 256, 16, 72)] // XL at T = 256
    [InlineData("cuda", 1, 1, 1000, 2, 72)] // ragged on 64-row query tiles and 64-key tiles
    public void AttentionV3Bf16_MatchesBf16Reference_EmulatedMmaOnCpu(string kind, int seed, int n, int t, int heads, int hd)
    {
        var dev = TestDevices.Get(kind);
        if (kind == "cpu-tiled") Assert.Equal(n == 1 ? AttentionV3.WarpsPerGroup / 2 : AttentionV3.WarpsPerGroup, AttentionV3.WarpsFor(dev, n, t, heads));
        var qkv = Tolerance.Random(seed, 3 * n * t * heads * hd, 2f);
        float scale = 1f / MathF.Sqrt(hd);
        var got = RunVersion(dev, 3, qkv, n, t, heads, hd);
        var bf16 = new float[got.Length];
        AttentionV3.ReferenceBf16(qkv, bf16, n, t, heads, hd, scale);
        Tolerance.AssertClose(bf16, got, 4e-3, 0, $"attention v3 vs bf16 reference t{t} hd{hd}", output);
        var fp32 = new float[got.Length];
        Attention.Reference(qkv, fp32, n, t, heads, hd, scale);
        Tolerance.AssertClose(fp32, got, 3e-2, 0, $"attention v3 vs fp32 reference t{t} hd{hd}", output);
    }

    [SkippableTheory]
    [InlineData("sim")]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void AttentionRun_PicksHostOnCpu_V1OnSim_V2OnCuda(string kind)
    {
        var dev = TestDevices.Get(kind);
        int fp32 = dev.IsHost ? 0 : dev.IsCuda ? 2 : 1, bf16 = dev.IsHost ? 0 : dev.IsCuda ? (AttentionV3.SupportsDevice(dev) ? 3 : 2) : 1;
        Assert.Equal(fp32, Attention.Choose(dev, 72, Precision.Fp32));
        Assert.Equal(dev.IsHost ? 0 : 1, Attention.Choose(dev, AttentionV2.MaxHeadDim + 1, Precision.Fp32));
        Assert.Equal(bf16, Attention.Choose(dev, 72, Precision.Bf16));
        Assert.Equal(fp32, Attention.Choose(dev, 36, Precision.Bf16)); // not a multiple of 8: fp32 v2 on CUDA
        Assert.Equal(dev.IsHost ? Attention.HostKernel : $"attention_v{fp32}", Attention.KernelName(dev, 72));
        // the dispatcher's output equals the chosen version's, bit for bit
        var qkv = Tolerance.Random(7, 3 * 1 * 5 * 2 * 8);
        using var tq = Up(dev, qkv); using var to = Tensor.Allocate(dev, "o", 5 * 2 * 8);
        Attention.Run(dev, tq.View, to.View, 1, 5, 2, 8, 1f / MathF.Sqrt(8));
        Assert.Equal(RunVersion(dev, Attention.Choose(dev, 8, Precision.Fp32), qkv, 1, 5, 2, 8), to.ToHost());
    }
}

// The tensor-core primitives (src/Kernels/TensorCore) on one warp: cp.async stages A (16×16), W (8×16, a Linear
// weight [n][k]) and V (16×8, k-major) into dynamic shared memory, ldmatrix loads the fragments (plain for A
// and W, .trans for V), mma.sync multiplies. On the CPU accelerator this runs the per-lane emulation; on CUDA
// the hardware instructions — the same kernel, the same reference.
// Tolerance: bf16/fp16 products are exact in fp32 and the 16-term fp32 sum differs from the float64
// reference by a few ulps: 1e-5 relative to Σ|a·b| covers any summation order.
using BlockDance.Kernels;
using BlockDance.Kernels.TensorCore;
using ILGPU;
using ILGPU.Backends.PTX;
using ILGPU.Backends.EntryPoints;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Xunit;

namespace BlockDance.Tests;

public class TensorCoreTests
{
    // One warp: c[16×8] += a[16×16]·w[8×16]ᵀ  and  d[16×8] += a·v  (v [16][8]). Inputs are packed 16-bit words.
    // Rows of A at or beyond `rowsA` are not read: cp.async zero-fills them (srcBytes 0).
    static void TileKernel(ArrayView<uint> a, ArrayView<uint> w, ArrayView<uint> v, ArrayView<float> c, ArrayView<float> d,
        ulong aPtr, ulong wPtr, ulong vPtr, int rowsA, int f16)
    {
        var smem = SharedMemory.GetDynamic<Chunk16>().Cast<uint>();
        int l = Warp.LaneIdx, g = l >> 2, t = l & 3;
        const int A0 = 0, W0 = 512, V0 = 768;           // byte offsets: A 16 rows × 32 B, W 8 × 32 B, V 16 × 16 B
        CpAsync.Copy16(smem, A0 + 16 * l, a, aPtr, 16L * l, (l >> 1) < rowsA ? 16 : 0);  // chunk l = row l/2, half l%2
        if (l < 16)
        {
            CpAsync.Copy16(smem, W0 + 16 * l, w, wPtr, 16L * l, 16);
            CpAsync.Copy16(smem, V0 + 16 * l, v, vPtr, 16L * l, 16);
        }
        CpAsync.Commit();
        CpAsync.Wait0();
        Group.Barrier();

        LdMatrix.X4(smem, A0 + (l & 15) * 32 + (l >> 4) * 16, out uint a0, out uint a1, out uint a2, out uint a3);
        LdMatrix.X2(smem, W0 + (l & 7) * 32 + ((l >> 3) & 1) * 16, out uint b0, out uint b1);
        LdMatrix.X2Trans(smem, V0 + (l & 15) * 16, out uint v0, out uint v1);

        float c0 = c[g * 8 + 2 * t], c1 = c[g * 8 + 2 * t + 1], c2 = c[(g + 8) * 8 + 2 * t], c3 = c[(g + 8) * 8 + 2 * t + 1];
        float d0 = d[g * 8 + 2 * t], d1 = d[g * 8 + 2 * t + 1], d2 = d[(g + 8) * 8 + 2 * t], d3 = d[(g + 8) * 8 + 2 * t + 1];
        if (f16 != 0)
        {
            Mma.M16N8K16F16(a0, a1, a2, a3, b0, b1, ref c0, ref c1, ref c2, ref c3);
            Mma.M16N8K16F16(a0, a1, a2, a3, v0, v1, ref d0, ref d1, ref d2, ref d3);
        }
        else
        {
            Mma.M16N8K16Bf16(a0, a1, a2, a3, b0, b1, ref c0, ref c1, ref c2, ref c3);
            Mma.M16N8K16Bf16(a0, a1, a2, a3, v0, v1, ref d0, ref d1, ref d2, ref d3);
        }
        c[g * 8 + 2 * t] = c0; c[g * 8 + 2 * t + 1] = c1; c[(g + 8) * 8 + 2 * t] = c2; c[(g + 8) * 8 + 2 * t + 1] = c3;
        d[g * 8 + 2 * t] = d0; d[g * 8 + 2 * t + 1] = d1; d[(g + 8) * 8 + 2 * t] = d2; d[(g + 8) * 8 + 2 * t + 1] = d3;
    }

    // Packs two fp32 per word the way the PackBf16/PackF16 primitives do (lo = lower index).
    static void PackKernel(Index1D i, ArrayView<float> src, ArrayView<uint> dst, int f16) =>
        dst[i] = f16 != 0 ? Mma.PackF16(src[2 * i], src[2 * i + 1]) : Mma.PackBf16(src[2 * i], src[2 * i + 1]);

    static float Decode(ushort h, bool f16) => f16 ? (float)BitConverter.UInt16BitsToHalf(h) : Bf16.ToFloat(h);
    static ushort Encode(float x, bool f16) => f16 ? BitConverter.HalfToUInt16Bits((System.Half)x) : Bf16.FromFloat(x);

    static uint[] Pack(float[] x, bool f16)
    {
        var p = new uint[x.Length / 2];
        for (int i = 0; i < p.Length; i++) p[i] = Encode(x[2 * i], f16) | ((uint)Encode(x[2 * i + 1], f16) << 16);
        return p;
    }

    [SkippableTheory]
    [InlineData("cpu", 0, 16, false)]
    [InlineData("cpu", 1, 11, false)]   // rows 11..15 of A zero-filled by cp.async
    [InlineData("cpu", 2, 16, true)]
    [InlineData("cuda", 0, 16, false)]
    [InlineData("cuda", 1, 11, false)]
    [InlineData("cuda", 2, 16, true)]
    public void MmaTile_LdMatrixAndCpAsync_MatchReference(string kind, int seed, int rowsA, bool f16)
    {
        var dev = TestDevices.Get(kind);
        var acc = dev.Accelerator;
        float[] af = Tolerance.Random(seed, 16 * 16), wf = Tolerance.Random(seed + 1, 8 * 16), vf = Tolerance.Random(seed + 2, 16 * 8);
        float[] c = Tolerance.Random(seed + 3, 16 * 8), dd = Tolerance.Random(seed + 4, 16 * 8);
        uint[] ap = Pack(af, f16), wp = Pack(wf, f16), vp = Pack(vf, f16);
        using var ba = acc.Allocate1D(ap); using var bw = acc.Allocate1D(wp); using var bv = acc.Allocate1D(vp);
        using var bc = acc.Allocate1D(c); using var bd = acc.Allocate1D(dd);
        var kernel = acc.LoadStreamKernel<ArrayView<uint>, ArrayView<uint>, ArrayView<uint>, ArrayView<float>, ArrayView<float>,
            ulong, ulong, ulong, int, int>(TileKernel);
        static ulong Addr(ArrayView<uint> v) => (ulong)v.LoadEffectiveAddressAsPtr();
        ulong Ptr(MemoryBuffer1D<uint, Stride1D.Dense> b) => dev.IsCuda ? Addr(b.View) : 0;
        kernel(new KernelConfig(1, 32, SharedMemoryConfig.RequestDynamic<Chunk16>(1024 / 16)),
            ba.View, bw.View, bv.View, bc.View, bd.View, Ptr(ba), Ptr(bw), Ptr(bv), rowsA, f16 ? 1 : 0);
        float[] gotC = bc.GetAsArray1D(), gotD = bd.GetAsArray1D();

        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 8; j++)
            {
                double sc = c[i * 8 + j], sd = dd[i * 8 + j], magC = Math.Abs(sc), magD = Math.Abs(sd);
                for (int k = 0; k < 16 && i < rowsA; k++)
                {
                    double x = Decode(f16 ? BitConverter.HalfToUInt16Bits((System.Half)af[i * 16 + k]) : Bf16.FromFloat(af[i * 16 + k]), f16);
                    double wv = Decode(Encode(wf[j * 16 + k], f16), f16), vv = Decode(Encode(vf[k * 8 + j], f16), f16);
                    sc += x * wv; sd += x * vv; magC += Math.Abs(x * wv); magD += Math.Abs(x * vv);
                }
                Assert.True(Math.Abs(gotC[i * 8 + j] - sc) <= 1e-5 * magC, $"C[{i}][{j}]: expected {sc:G9}, got {gotC[i * 8 + j]:G9}");
                Assert.True(Math.Abs(gotD[i * 8 + j] - sd) <= 1e-5 * magD, $"D[{i}][{j}]: expected {sd:G9}, got {gotD[i * 8 + j]:G9}");
            }
    }

    [SkippableTheory]
    [InlineData("cpu", false)]
    [InlineData("cpu", true)]
    [InlineData("cuda", false)]
    [InlineData("cuda", true)]
    public void PackBf16F16_RoundToNearestEven_LowIndexInLowHalf(string kind, bool f16)
    {
        var dev = TestDevices.Get(kind);
        // Ties, values just above/below ties, negatives, large and tiny magnitudes.
        float[] src = [1f, -2f, 6.1e-5f, 3e-6f, -5.96e-8f, 1e6f, 65520f, 2049f, 2051f, 0.1f, 1.00390625f, 1.01171875f, 3.14159265f, -0.0001234f, 65504f, 1e-3f, 1.0009765625f, -7.5f];
        using var bs = dev.Accelerator.Allocate1D(src);
        using var bd = dev.Accelerator.Allocate1D<uint>(src.Length / 2);
        var k = dev.Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<uint>, int>(PackKernel);
        k(src.Length / 2, bs.View, bd.View, f16 ? 1 : 0);
        Assert.Equal(Pack(src, f16), bd.GetAsArray1D());
    }

    [Fact]
    public void TileKernelPtx_HasMmaLdMatrixCpAsync_AtPtxIsa78()
    {
        using var ctx = Context.Create(b => b.Optimize(OptimizationLevel.O2).EnableAlgorithms());
        var backend = new PTXBackend(ctx, new CudaCapabilityContext(CudaArchitecture.SM_80), CudaArchitecture.SM_80,
            CudaInstructionSet.ISA_78, null);
        var mi = typeof(TensorCoreTests).GetMethod(nameof(TileKernel), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!;
        var compiled = backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(mi), KernelSpecialization.Empty);
        string ptx = ((PTXCompiledKernel)compiled).PTXAssembly;
        Assert.Contains(".target sm_80", ptx);
        Assert.Contains(".version 7.8", ptx);
        Assert.Contains("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", ptx);
        Assert.Contains("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", ptx);
        Assert.Contains("ldmatrix.sync.aligned.m8n8.x4.shared.b16", ptx);
        Assert.Contains("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16", ptx);
        Assert.Contains("cp.async.cg.shared.global", ptx);
        Assert.Contains("cp.async.wait_group 0", ptx);
        Assert.Contains(".align 16", ptx);
    }
}

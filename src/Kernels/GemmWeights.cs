// 16-bit GEMM operands on the device: a weight matrix W[N, K] stored as bf16 or fp16 bits (half the memory
// of fp32), and the conversion kernel that rounds an fp32 activation x[M, K] into the same format before a
// tensor-core GEMM reads it (GemmV3).
//   bf16: fp32 rounded to nearest, ties to even (Bf16.FromFloat) — fp32's range, 8 mantissa bits;
//   fp16: IEEE half, round to nearest even (ILGPU.Half / System.Half) — 11 mantissa bits, range ±65504
//         (DiT weights and LayerNorm-ed activations are far inside it; the residual stream stays fp32).
using ILGPU;
using ILGPU.Runtime;
using Half = ILGPU.Half;

namespace BlockDance.Kernels;

public sealed class GemmWeights : IDisposable
{
    public MemoryBuffer1D<ushort, Stride1D.Dense> Bits { get; }
    public Precision Precision { get; }
    public int N { get; }
    public int K { get; }
    public ComputeDevice Device { get; }

    GemmWeights(ComputeDevice dev, MemoryBuffer1D<ushort, Stride1D.Dense> bits, Precision p, int n, int k)
    {
        Device = dev; Bits = bits; Precision = p; N = n; K = k;
        dev.AllocatedBytes += bits.LengthInBytes;
    }

    /// <summary>Rounds the fp32 weights w (n, k) to `precision` and stores them on the device.</summary>
    public static GemmWeights Create(ComputeDevice dev, Tensor w, Precision precision) =>
        FromHost(dev, w.ToHost(), w.Shape[0], w.Shape[1], precision);

    public static GemmWeights FromHost(ComputeDevice dev, float[] w, int n, int k, Precision precision)
    {
        if (precision == Precision.Fp32) throw new ArgumentException("GemmWeights: 16-bit storage only (bf16 or fp16)");
        if (w.Length != (long)n * k) throw new ArgumentException($"GemmWeights: expected {(long)n * k} values for ({n}, {k}), found {w.Length}");
        var bits = new ushort[w.Length];
        for (long i = 0; i < w.Length; i++) bits[i] = ToBits(w[i], precision);
        var buf = dev.Accelerator.Allocate1D(bits);
        return new GemmWeights(dev, buf, precision, n, k);
    }

    public static ushort ToBits(float f, Precision p) =>
        p == Precision.Bf16 ? Bf16.FromFloat(f) : BitConverter.HalfToUInt16Bits((System.Half)f);

    public static float FromBits(ushort b, Precision p) =>
        p == Precision.Bf16 ? Bf16.ToFloat(b) : (float)BitConverter.UInt16BitsToHalf(b);

    /// <summary>The values a 16-bit operand carries, back in fp32 (for references).</summary>
    public static float[] RoundHost(float[] a, Precision p)
    {
        var r = new float[a.Length];
        for (long i = 0; i < a.Length; i++) r[i] = FromBits(ToBits(a[i], p), p);
        return r;
    }

    // ------------------------------------------------------------ fp32 → 16-bit conversion kernel (grid-stride)
    /// <summary>fp32 → IEEE half bits, round to nearest even, overflow → ±∞, subnormals kept, NaN stays NaN:
    /// integer arithmetic so the CPU accelerator rounds exactly like the GPU (ILGPU's Half cast does not
    /// promise round-to-nearest-even on the CPU).</summary>
    static ushort HalfBits(float f)
    {
        uint u = Interop.FloatAsInt(f), sign = (u >> 16) & 0x8000u, mant = u & 0x7FFFFFu;
        int exp = (int)((u >> 23) & 0xFF) - 127 + 15;
        if (((u >> 23) & 0xFF) == 0xFF) return (ushort)(sign | 0x7C00u | (mant != 0 ? 0x200u : 0u));
        if (exp >= 31) return (ushort)(sign | 0x7C00u);
        if (exp <= 0)
        {
            if (exp < -10) return (ushort)sign;
            mant |= 0x800000u;
            int shift = 14 - exp;
            uint q = mant >> shift, rest = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
            if (rest > half || (rest == half && (q & 1) != 0)) q++;
            return (ushort)(sign | q);
        }
        uint h = ((uint)exp << 10) | (mant >> 13), low = mant & 0x1FFFu;
        if (low > 0x1000u || (low == 0x1000u && (h & 1) != 0)) h++;
        return (ushort)(sign | h);
    }

    static ushort KernelBits(float f, int fp16)
    {
        if (fp16 != 0) return HalfBits(f);
        uint u = Interop.FloatAsInt(f);
        if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (ushort)((u >> 16) | 0x40);
        u += 0x7FFFu + ((u >> 16) & 1u);
        return (ushort)(u >> 16);
    }

    static void ConvertKernel(Index1D index, ArrayView<float> src, ArrayView<ushort> dst, long n, int fp16, int width)
    {
        for (long i = index; i < n; i += width) dst[i] = KernelBits(src[i], fp16);
    }

    /// <summary>dst[i] = src[i] rounded to `p` (bits), i &lt; n.</summary>
    public static void Convert(ComputeDevice dev, ArrayView<float> src, ArrayView<ushort> dst, long n, Precision p)
    {
        Check.Size("convert src", src.Length, n);
        Check.Size("convert dst", dst.Length, n);
        int width = dev.LaunchWidth(n);
        dev.Kernels.Get("convert_to_16bit", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<ushort>, long, int, int>(ConvertKernel))
            (width, src, dst, n, p == Precision.Fp16 ? 1 : 0, width);
    }

    // ------------------------------------------------------------ fp32 → 16-bit value → fp32 (the emulated path)
    static void RoundKernel(Index1D index, ArrayView<float> src, ArrayView<float> dst, long n, int fp16, int width)
    {
        for (long i = index; i < n; i += width)
        {
            ushort bits = KernelBits(src[i], fp16);
            dst[i] = fp16 != 0 ? (float)Interop.IntAsFloat(bits) : Interop.IntAsFloat((uint)bits << 16);
        }
    }

    sealed class RoundScratch { public MemoryBuffer1D<float, Stride1D.Dense>? Buffer; }
    static readonly System.Runtime.CompilerServices.ConditionalWeakTable<ComputeDevice, RoundScratch> roundScratch = new();

    /// <summary>x (n values) rounded to `p` and back to fp32, in a per-device scratch buffer (reused; valid
    /// until the next call on the device). The operand an emulated 16-bit GEMM multiplies.</summary>
    public static ArrayView<float> RoundedCopy(ComputeDevice dev, ArrayView<float> x, long n, Precision p)
    {
        var holder = roundScratch.GetOrCreateValue(dev);
        if (holder.Buffer == null || holder.Buffer.Length < n)
        {
            if (holder.Buffer != null) { dev.AllocatedBytes -= holder.Buffer.LengthInBytes; holder.Buffer.Dispose(); }
            holder.Buffer = dev.Accelerator.Allocate1D<float>(Math.Max(1, n));
            dev.AllocatedBytes += holder.Buffer.LengthInBytes;
        }
        var dst = holder.Buffer.View.SubView(0, n).AsContiguous();
        int width = dev.LaunchWidth(n);
        dev.Kernels.Get("round_to_16bit", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, long, int, int>(RoundKernel))
            (width, x, dst, n, p == Precision.Fp16 ? 1 : 0, width);
        return dst;
    }

    public void Dispose()
    {
        Device.AllocatedBytes -= Bits.LengthInBytes;
        Bits.Dispose();
    }
}

// A GEMM's weight matrix W[N, K] on the device, in the form the device's GEMM reads (chosen once, at load):
//   Bits      bf16 or fp16 bits (half the memory of fp32) for the tensor-core GEMM v3 on CUDA;
//   packed    on the host backend: fp32 in the 16-column panels of GemmHost.Pack (packed once, never per call);
//   plain     fp32 (N, K) as PyTorch stores it: the ILGPU kernels (v1 on the simulator, v2/small-M on CUDA).
// Under --precision bf16|fp16 without v3 (the CPU, or a K that is not a multiple of 8) the packed/plain values
// are the weights rounded to 16 bits, and Gemm.Run rounds x the same way before each GEMM (emulation).
// Also here: the conversion kernel that rounds an fp32 activation x[M, K] into the 16-bit format before a
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
    /// <summary>16-bit weights for GEMM v3; null in the fp32 forms.</summary>
    public MemoryBuffer1D<ushort, Stride1D.Dense>? Bits { get; }
    /// <summary>fp32 values: packed panels when HostPacked, else W (N, K); null in the 16-bit form.</summary>
    public Tensor? Values { get; }
    /// <summary>Values are in GemmHost's packed panel layout (host backend).</summary>
    public bool HostPacked { get; }
    /// <summary>Fp32, or the 16-bit format the operands carry (run on tensor cores or emulated).</summary>
    public Precision Precision { get; }
    public int N { get; }
    public int K { get; }
    public ComputeDevice Device { get; }

    GemmWeights(ComputeDevice dev, MemoryBuffer1D<ushort, Stride1D.Dense> bits, Precision p, int n, int k)
    {
        Device = dev; Bits = bits; Precision = p; N = n; K = k;
        dev.AllocatedBytes += bits.LengthInBytes;
    }

    GemmWeights(ComputeDevice dev, Tensor values, bool hostPacked, Precision p, int n, int k)
    {
        Device = dev; Values = values; HostPacked = hostPacked; Precision = p; N = n; K = k;
    }

    /// <summary>A layer's weights w (n, k) in the form for the device and its --precision (the one decision
    /// point; logged once per device and form).</summary>
    public static GemmWeights ForLayer(ComputeDevice dev, string name, float[] w, int n, int k)
    {
        var p = dev.Precision;
        if (p != Precision.Fp32 && dev.IsCuda && GemmV3.Supports(dev) && GemmV3.SupportsK(k))
        {
            KernelChoice.Once(dev, $"gemm: {Lower(p)} v3 (tensor cores, weights stored in 16 bits)");
            return FromHost(dev, w, n, k, p);
        }
        if (p != Precision.Fp32)
        {
            KernelChoice.Once(dev, $"gemm: {Lower(p)} emulated on {(dev.IsCuda ? "CUDA (a layer's K is not a multiple of 8, or no sm_80)" : dev.IsHost ? "the host backend" : "the CPU accelerator")}: " +
                                   "operands rounded to 16 bits, fp32 kernel (slower path, same arithmetic as tensor cores)");
            w = RoundHost(w, p);
        }
        if (dev.IsHost) return new GemmWeights(dev, GemmHost.PackToDevice(dev, name, w, n, k), true, p, n, k);
        return new GemmWeights(dev, Tensor.FromHost(dev, name, w, n, k), false, p, n, k);
    }

    /// <summary>fp32 weights already on the device, w (n, k): kept as they are, or on the host backend packed
    /// into a new buffer and w disposed (the GemmWeights owns what it returns either way).</summary>
    public static GemmWeights FromTensor(Tensor w)
    {
        var dev = w.Device;
        int n = w.Shape[0], k = w.Shape[1];
        if (!dev.IsHost) return new GemmWeights(dev, w, false, Precision.Fp32, n, k);
        var packed = Tensor.Allocate(dev, w.Name + "(packed)", checked((int)GemmHost.PackedLength(n, k)));
        GemmHost.Pack(Host.Span(w.View), Host.Span(packed.View), n, k);
        w.Dispose();
        return new GemmWeights(dev, packed, true, Precision.Fp32, n, k);
    }

    static string Lower(Precision p) => p.ToString().ToLowerInvariant();

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
        if (dev.IsHost)
        {
            // The same integer rounding as the kernel, in chunks of 64 K values on the host threads.
            var (src, to) = (x, dst);
            const int chunk = 1 << 16;
            Host.For(dev, "round_to_16bit_host", (int)((n + chunk - 1) / chunk), c =>
            {
                var xs = Host.Span(src.SubView((long)c * chunk, Math.Min(chunk, n - (long)c * chunk)));
                var ys = Host.Span(to.SubView((long)c * chunk, xs.Length));
                int fp16 = p == Precision.Fp16 ? 1 : 0;
                for (int i = 0; i < xs.Length; i++) ys[i] = FromBits(KernelBits(xs[i], fp16), p);
            });
            return dst;
        }
        int width = dev.LaunchWidth(n);
        dev.Kernels.Get("round_to_16bit", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, long, int, int>(RoundKernel))
            (width, x, dst, n, p == Precision.Fp16 ? 1 : 0, width);
        return dst;
    }

    public void Dispose()
    {
        if (Bits != null)
        {
            Device.AllocatedBytes -= Bits.LengthInBytes;
            Bits.Dispose();
        }
        Values?.Dispose();
    }
}

// Row-wise addition with strides, for the small (N, k·D) condition tensors of PixArt-α:
//   out[r·os + oo + j] = a[r·as + ao + j] + b[r·bs + bo + j]      r < rows, j < width
// A stride of 0 broadcasts one row over all rows. Uses: adaLN-single's per-block modulation
// (table (6D) broadcast + t0 (N, 6D)), the final layer's (table (2D) + t_emb repeated), and the
// micro-condition embeddings added into column slices of t_emb (out = a in place).
//
// v1 (this file): grid-stride over the rows·width outputs; no shared memory.
// host: the host backend's version, one row per work item (the same sums, the same bytes).
using BlockDance.Kernels.Harness;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

/// <summary>Where one operand of StridedAdd lives: a view, the row stride (0 = broadcast) and the column offset.</summary>
public readonly record struct RowOperand(ArrayView<float> View, int Stride, int Offset);

public static unsafe class StridedAdd
{
    public static void Reference(float[] a, int aStride, int aOffset, float[] b, int bStride, int bOffset,
        float[] o, int oStride, int oOffset, int rows, int width)
    {
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < width; j++)
                o[r * oStride + oOffset + j] = a[r * aStride + aOffset + j] + b[r * bStride + bOffset + j];
    }

    [GpuKernel("strided_add")]
    static void Kernel(Index1D index, ArrayView<float> a, ArrayView<float> b, ArrayView<float> o,
        int aStride, int aOffset, int bStride, int bOffset, int oStride, int oOffset, int rows, int width, int launch)
    {
        long total = (long)rows * width;
        for (long e = index; e < total; e += launch)
        {
            long r = e / width, j = e % width;
            o[r * oStride + oOffset + j] = a[r * aStride + aOffset + j] + b[r * bStride + bOffset + j];
        }
    }

    /// <summary>o rows = a rows + b rows (width values per row); o may be a itself (in-place).</summary>
    public static void Run(ComputeDevice dev, RowOperand a, RowOperand b, RowOperand o, int rows, int width)
    {
        static void Fits(string what, RowOperand x, int rows, int width)
        {
            long need = (long)(rows - 1) * x.Stride + x.Offset + width;
            if (x.Offset < 0 || x.Stride < 0 || x.View.Length < need)
                throw new ArgumentException($"strided add {what}: {x.View.Length} values, need {need} (stride {x.Stride}, offset {x.Offset})");
        }
        if (rows <= 0 || width <= 0) return;
        Fits("a", a, rows, width);
        Fits("b", b, rows, width);
        Fits("out", o, rows, width);
        if (dev.IsHost)
        {
            Host.For(dev, "strided_add_host", rows, r =>
            {
                float* ap = Host.Ptr(a.View) + (long)r * a.Stride + a.Offset, bp = Host.Ptr(b.View) + (long)r * b.Stride + b.Offset;
                float* op = Host.Ptr(o.View) + (long)r * o.Stride + o.Offset;
                for (int j = 0; j < width; j++) op[j] = ap[j] + bp[j];
            });
            return;
        }
        int launch = dev.LaunchWidth((long)rows * width);
        dev.Kernels.Get("strided_add", k => k.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                int, int, int, int, int, int, int, int, int>(Kernel))
            (launch, a.View, b.View, o.View, a.Stride, a.Offset, b.Stride, b.Offset, o.Stride, o.Offset, rows, width, launch);
    }
}

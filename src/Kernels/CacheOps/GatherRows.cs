// Row gather / scatter between a batch and a compact sub-batch, for per-sample cache decisions:
//   gather:  dst[k, :] = src[idx[k], :]      (k < count)
//   scatter: dst[idx[k], :] = src[k, :]
// A "row" is one sample's slice (T·D features, or D condition values).
// host: the host backend's version, one row copy per work item.
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class GatherRows
{
    public static void GatherReference(float[] src, int[] idx, float[] dst, int rowLen)
    {
        for (int k = 0; k < idx.Length; k++) Array.Copy(src, (long)idx[k] * rowLen, dst, (long)k * rowLen, rowLen);
    }

    public static void ScatterReference(float[] src, int[] idx, float[] dst, int rowLen)
    {
        for (int k = 0; k < idx.Length; k++) Array.Copy(src, (long)k * rowLen, dst, (long)idx[k] * rowLen, rowLen);
    }

    static void Kernel(Index1D index, ArrayView<float> src, ArrayView<int> idx, ArrayView<float> dst, int count, int rowLen, int scatter, int width)
    {
        long total = (long)count * rowLen;
        for (long e = index; e < total; e += width)
        {
            int k = (int)(e / rowLen), r = (int)(e % rowLen);
            if (scatter == 0) dst[e] = src[(long)idx[k] * rowLen + r];
            else dst[(long)idx[k] * rowLen + r] = src[e];
        }
    }

    public static void Gather(ComputeDevice dev, ArrayView<float> src, ArrayView<int> idx, ArrayView<float> dst, int count, int rowLen) =>
        Launch(dev, src, idx, dst, count, rowLen, 0);

    public static void Scatter(ComputeDevice dev, ArrayView<float> src, ArrayView<int> idx, ArrayView<float> dst, int count, int rowLen) =>
        Launch(dev, src, idx, dst, count, rowLen, 1);

    static void Launch(ComputeDevice dev, ArrayView<float> src, ArrayView<int> idx, ArrayView<float> dst, int count, int rowLen, int scatter)
    {
        Check.Size("gather/scatter indices", idx.Length, count);
        Check.Size("gather/scatter compact side", scatter == 0 ? dst.Length : src.Length, (long)count * rowLen);
        if (dev.IsHost)
        {
            Host.For(dev, "gather_rows_host", count, k =>
            {
                long at = (long)Host.Ptr(idx)[k] * rowLen, compact = (long)k * rowLen;
                var from = Host.Span(src.SubView(scatter == 0 ? at : compact, rowLen));
                from.CopyTo(Host.Span(dst.SubView(scatter == 0 ? compact : at, rowLen)));
            });
            return;
        }
        int width = dev.LaunchWidth((long)count * rowLen);
        dev.Kernels.Get("gather_rows", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int, int>(Kernel))
            (width, src, idx, dst, count, rowLen, scatter, width);
    }
}

// The gate signal of a data-dependent cache, computed on the device: the relative L1 change d = ‖v − prev‖₁ / ‖prev‖₁
// of a feature since the step the policy kept `prev` (CacheSignals.RelativeL1's definition: per sample over both CFG
// rows). The reduction runs on the device (RowChange); the host then waits once for 2 doubles per model row — the
// decision's only read-back of the step — instead of copying whole (N, T, D) features. See docs/caching.md, "Host waits".
using BlockDance.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Cache;

public sealed class ChangeSignal(ComputeDevice device, int modelBatch, int rowLength) : IDisposable
{
    readonly MemoryBuffer1D<double, Stride1D.Dense> results = device.Accelerator.Allocate1D<double>(2L * modelBatch);
    readonly MemoryBuffer1D<double, Stride1D.Dense> partials = device.Accelerator.Allocate1D<double>(2L * modelBatch * RowChange.Chunks(rowLength));
    public long Bytes => results.LengthInBytes + partials.LengthInBytes;

    /// <summary>Writes v = x − y (or x) into `current`, for a policy that keeps it, without reading anything back.</summary>
    public void Keep(Tensor x, Tensor? y, Tensor current, int rows) =>
        RowChange.Run(device, x.View, y?.View, x.View, current.View, rows, rowLength, results.View, partials.View);

    /// <summary>d(v, prev) per sample of `cfg`, v = x − y (or x); with `current`, v is also written there. One read-back.</summary>
    public double[] RelativeL1(Tensor x, Tensor? y, Tensor prev, CfgLayout cfg, Tensor? current = null)
    {
        RowChange.Run(device, x.View, y?.View, prev.View, current?.View, cfg.ModelBatch, rowLength, results.View, partials.View);
        var host = new double[2 * cfg.ModelBatch];
        device.CountHostWait();
        results.View.SubView(0, host.Length).CopyToCPU(host);
        var d = new double[cfg.Samples];
        for (int i = 0; i < cfg.Samples; i++)
        {
            double num = 0, den = 0;
            for (int h = 0; h < cfg.Halves; h++)
            {
                int r = cfg.Row(i, h);
                num += host[2 * r];
                den += host[2 * r + 1];
            }
            d[i] = den > 0 ? num / den : (num > 0 ? double.PositiveInfinity : 0);
        }
        return d;
    }

    public void Dispose()
    {
        results.Dispose();
        partials.Dispose();
    }
}

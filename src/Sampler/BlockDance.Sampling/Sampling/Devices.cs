// The device a pipeline runs on, with the precision of its GEMMs: by default bf16 on CUDA (tensor cores) and fp32 on
// the CPU accelerator (where 16-bit operands only cost accuracy) — the program's default too. The choice is logged.
using BlockDance.Kernels;

namespace BlockDance.Sampling;

public static class Devices
{
    /// <summary>The default GEMM precision on `dev`.</summary>
    public static Precision DefaultPrecision(ComputeDevice dev) => dev.IsCuda ? Precision.Bf16 : Precision.Fp32;

    /// <summary>A new device of `kind` at `precision` (null: the default), both logged.</summary>
    public static ComputeDevice Create(DeviceKind kind, Precision? precision = null)
    {
        var dev = ComputeDevice.Create(kind);
        dev.Precision = precision ?? DefaultPrecision(dev);
        Log.Info($"device: {dev.Describe()}; precision {dev.Precision.ToString().ToLowerInvariant()}" +
                 (precision is null ? $" (the default {(dev.IsCuda ? "on CUDA" : "on the CPU accelerator")})" : ""));
        return dev;
    }
}

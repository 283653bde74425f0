// Checked after every sampling step, on the sample itself:
//   - NaN/Inf: NonFinite counts the non-finite values of x on the device (one 4-byte read-back per step,
//     after the step's synchronize). A NaN weight, a NaN in a --noise file, or an activation that
//     overflows its precision makes every later step NaN and the image black; so the first step at which
//     one appears stops the run with a NonFiniteException (exit 2) and nothing is written.
//   - SIGINT/SIGTERM: a recorded signal (Interruption) stops the run at this step boundary.
// The guard marks sampling as a region that stops cleanly, so the first signal is deferred to here.
using BlockDance.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Sampler;

/// <summary>The samples became NaN/Inf during sampling.</summary>
public sealed class NonFiniteException(string message) : InputException(message);

public sealed class SamplingGuard : IDisposable
{
    readonly ComputeDevice dev;
    readonly MemoryBuffer1D<int, Stride1D.Dense> count;
    readonly IDisposable region = Interruption.Defer();

    public SamplingGuard(ComputeDevice dev)
    {
        this.dev = dev;
        count = dev.Accelerator.Allocate1D<int>(1);
    }

    /// <summary>After step `step` (0-based) of `steps` on x (B, C, H, W), the batch starting at sample `first`.</summary>
    public void AfterStep(Tensor x, int step, int steps, int first)
    {
        Interruption.ThrowIfRequested($"after step {step + 1} of {steps}");
        count.MemSetToZero();
        NonFinite.Count(dev, x.View, count.View, 0);
        int bad = count.GetAsArray1D()[0];
        if (bad > 0)
            throw new NonFiniteException(
                $"sampling: expected finite samples, found {bad} NaN/Inf of {x.Length} values after step {step + 1} of {steps} " +
                $"(samples {first}..{first + x.Shape[0] - 1}); no output written (check the model weights, the --noise file and the precision)");
    }

    public void Dispose()
    {
        count.Dispose();
        region.Dispose();
    }
}

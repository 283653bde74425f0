// Checked at every sampling step, without stopping the device:
//   - NaN/Inf: NonFinite adds the non-finite values of x after step k into counts[k] on the device. Nothing is
//     read back during sampling (a read-back is a host wait that would stall the step loop); Finish reads the
//     per-step counts once, with the samples, and reports the first step at which a value went non-finite.
//     A NaN weight, a NaN in a --noise file, or an activation that overflows its precision makes every later
//     step NaN and the image black, so the run fails with a NonFiniteException (exit 2) and nothing is written.
//     The price of not stalling: a run that goes bad still runs to its last step before it reports.
//   - SIGINT/SIGTERM: a recorded signal (Interruption, a host flag) stops the run at this step boundary.
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
    readonly MemoryBuffer1D<int, Stride1D.Dense> counts;   // (steps) non-finite values of x after each step
    readonly IDisposable region = Interruption.Defer();

    public SamplingGuard(ComputeDevice dev, int steps)
    {
        this.dev = dev;
        counts = dev.Accelerator.Allocate1D<int>(steps);
    }

    /// <summary>Before a batch: clears the per-step counts (queued, no host wait).</summary>
    public void Begin() => counts.MemSetToZero();

    /// <summary>After step `step` (0-based) of `steps` on x (B, C, H, W): queue the count, check for a signal.</summary>
    public void AfterStep(Tensor x, int step, int steps)
    {
        Interruption.ThrowIfRequested($"after step {step + 1} of {steps}");
        NonFinite.Count(dev, x.View, counts.View, step);
    }

    /// <summary>After the batch starting at sample `first`: one read-back of the per-step counts.</summary>
    public void Finish(Tensor x, int steps, int first)
    {
        dev.CountHostWait();
        var found = counts.GetAsArray1D();
        for (int step = 0; step < steps; step++)
            if (found[step] > 0)
                throw new NonFiniteException(
                    $"sampling: expected finite samples, found {found[step]} NaN/Inf of {x.Length} values after step {step + 1} of {steps} " +
                    $"(samples {first}..{first + x.Shape[0] - 1}); no output written (check the model weights, the --noise file and the precision)");
    }

    public void Dispose()
    {
        counts.Dispose();
        region.Dispose();
    }
}

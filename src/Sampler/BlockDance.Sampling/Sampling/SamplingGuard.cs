// Checked at every sampling step, without stopping the device:
//   - NaN/Inf: NonFinite adds the non-finite values of x after step k into counts[k] on the device. Nothing is
//     read back during sampling (a read-back is a host wait that would stall the step loop); Finish reads the
//     per-step counts once, with the samples, and reports the first step at which a value went non-finite.
//     Weights (FiniteWeightCheck), captions and given noise are checked for NaN/Inf where they come in (bad input,
//     exit 2), so a sample that goes non-finite was made so by the engine from finite inputs — a bug, or an
//     activation beyond its precision's range: a NonFiniteException, an internal error (exit 70) naming the step, and
//     nothing is written. With ExplainNonFinite (the program's --verbose) the failing batch is run once more with
//     every kernel checked (NonFiniteTrace), and the message names the first kernel whose output went non-finite.
//     The price of not stalling: a run that goes bad still runs to its last step before it reports.
//   - SIGINT/SIGTERM: a recorded signal (Interruption, a host flag) stops the run at this step boundary.
// The guard marks sampling as a region that stops cleanly, so the first signal is deferred to here.
using BlockDance.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Sampling;

/// <summary>The samples became NaN/Inf during sampling from finite inputs: the engine's fault (an internal error).</summary>
public sealed class NonFiniteException(string message) : Exception(message);

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
                    $"(samples {first}..{first + x.Shape[0] - 1}) from finite weights and noise: the engine produced them " +
                    $"(a fault, or an activation beyond the range of {dev.Precision.ToString().ToLowerInvariant()}); no output written");
    }

    /// <summary>On a NonFiniteException, re-run the failing batch with every kernel checked to name the first kernel
    /// whose output went non-finite (set by the program for --verbose; per thread, as the tests run commands in parallel).</summary>
    public static bool ExplainNonFinite { get => explain; set => explain = value; }
    [ThreadStatic] static bool explain;

    /// <summary>The failure `e` with the kernel that caused it, found by re-running under a NonFiniteTrace.</summary>
    public static NonFiniteException Explain(NonFiniteException e, ComputeDevice dev, Action<NonFiniteTrace> rerun)
    {
        Log.Info("non-finite samples: re-running the batch with every kernel's output checked (slow)");
        var trace = new NonFiniteTrace(dev.Accelerator);
        dev.Kernels.Trace = trace;
        try { rerun(trace); }
        catch (NonFiniteKernelException k) { return new NonFiniteException($"{e.Message}; {k.Message}"); }
        catch (NonFiniteException) { }
        finally { dev.Kernels.Trace = null; }
        return new NonFiniteException($"{e.Message}; the re-run with every kernel checked found no kernel whose float outputs went non-finite " +
                                      "(a host kernel, or data inside a struct argument)");
    }

    public void Dispose()
    {
        counts.Dispose();
        region.Dispose();
    }
}

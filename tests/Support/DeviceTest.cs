// Base of the tests that run on a device: written once, run by one subclass per backend
// (`public sealed class CpuX() : X("cpu")`, `public sealed class CudaX() : X("cuda")`). The CPU
// accelerator always runs; the CUDA subclass is skipped, visibly, where no GPU exists. Test methods
// are [SkippableFact]/[SkippableTheory], so that the skip is reported as a skip.
using BlockDance.Kernels;

namespace BlockDance.Tests;

public abstract class DeviceTest(string kind)
{
    protected string Kind => kind;
    /// <summary>The backend's shared device (TestDevices); skips the test where the backend is missing.</summary>
    protected ComputeDevice Device => TestDevices.Get(kind);
}

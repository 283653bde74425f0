// Optional addition to IKernelOp: an op whose versions differ in precision names the vendor baseline per
// version (GEMM: cuBLAS SGEMM for fp32 versions, HGEMM for bf16/fp16 ones). `blockdance kernels` prefers it
// over IKernelOp.PrepareBaseline(dev, shape) when an op implements it.
namespace BlockDance.Kernels.Harness;

public interface IVersionBaseline
{
    /// <summary>The baseline's display name and trial (null trial where none applies, e.g. on the CPU).</summary>
    (string Name, KernelTrial? Trial) PrepareBaseline(ComputeDevice dev, string version, KernelShape shape);
}

// Out of device memory, recognised by what the accelerator says: the host's OutOfMemoryException (the CPU accelerator's
// arrays), or a CudaException whose driver error code is CUDA_ERROR_OUT_OF_MEMORY. Any other accelerator error is not
// the user's (an internal error).
using ILGPU.Runtime.Cuda;

namespace BlockDance.Kernels;

public static class DeviceMemory
{
    public static bool IsOutOfMemory(Exception e) =>
        e is OutOfMemoryException || e is CudaException { Error: nameof(CudaError.CUDA_ERROR_OUT_OF_MEMORY) };   // ILGPU keeps the code as its name
}

// Addressing the dynamic shared memory from inline PTX.
//
// ldmatrix and cp.async take 32-bit shared-window addresses, which ILGPU gives no API for. The dynamic shared
// allocation of a kernel is the PTX symbol `__dyn_shared_alloca` (ILGPU's PTX code generator names it so), and
// `mov.u32 r, __dyn_shared_alloca;` yields its shared-window address. Tensor-core kernels therefore stage
// every tile in the **dynamic** shared allocation and address it by byte offset from its start:
//
//   var smem = SharedMemory.GetDynamic<Chunk16>();   // 16-byte elements → `.align 16` (ldmatrix/cp.async need it)
//   var words = smem.Cast<uint>();                    // what the CPU emulation reads and writes
//   LdMatrix.X4(words, byteOffset, out a0, out a1, out a2, out a3);
//
// On the GPU the view argument is unused (the symbol is); on the CPU accelerator the emulation reads the view.
// Launch with SharedMemoryConfig.RequestDynamic<Chunk16>(bytes / 16).
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace BlockDance.Kernels.TensorCore;

/// <summary>16 bytes: the element type of tensor-core kernels' dynamic shared memory (forces 16-byte alignment).</summary>
public struct Chunk16
{
    public uint X, Y, Z, W;
}

public static class SharedTile
{
    /// <summary>Shared-window address of byte `byteOffset` of the dynamic shared allocation (GPU only; 0 on the CPU).</summary>
    public static uint Address(int byteOffset)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("{ .reg .u32 base; mov.u32 base, __dyn_shared_alloca; add.u32 %0, base, %1; }", out uint a, (uint)byteOffset);
            return a;
        }
        return 0;
    }

    /// <summary>The 16-bit element at byte `byteOffset` of a word view (CPU emulation helper).</summary>
    public static uint Half16(ArrayView<uint> words, int byteOffset)
    {
        uint w = words[byteOffset >> 2];
        return (byteOffset & 2) == 0 ? (w & 0xFFFF) : (w >> 16);
    }
}

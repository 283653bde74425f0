// cp.async: 16-byte global → shared copies that bypass the registers and run in the background, so the next
// tiles load while the tensor cores work on the current one (a multi-stage pipeline).
//
// `cp.async.cg.shared.global [dst], [src], 16, srcBytes;` (PTX ISA, "Data Movement: cp.async"; SASS
// LDGSTS.E.BYPASS.128, cached in L2 only). srcBytes < 16 zero-fills the rest: 0 gives a zero chunk for rows
// outside M/N, so edge tiles need no branch around the mma. `commit_group` closes the copies issued so far into
// a group; `wait_group N` waits until at most N of this thread's newest groups are pending. The data is then
// visible to the issuing thread only: follow every wait with Group.Barrier() before other threads read it.
//
// Global addresses: ILGPU cannot take a device pointer inside a kernel, so the launcher passes the buffer's
// address as a ulong (view.LoadEffectiveAddressAsPtr() on the host) and the kernel adds byte offsets. On the
// CPU accelerator the copy reads the view instead (the address is unused), commit/wait are no-ops.
//
// Measured with ptxas 11.8 (sm_80 and sm_90): a kernel that contains any cp.async instruction keeps the tiny
// local allocas through which ILGPU passes EmitRef operands (mma.sync / ldmatrix results) in local memory —
// a stack frame of 4 bytes per operand and LDL/STL around every HMMA — while the same kernel without cp.async
// has them all promoted to registers (0-byte stack frame). Every spelling of cp.async (.ca/.cg, with or without
// src-size, 32- or 64-bit shared address) behaves the same; removing just that instruction from the PTX removes
// the stack frame. So a kernel that uses EmitRef-based primitives either stages global → shared through
// registers (ld.global.v4 + st.shared.v4, prefetched one tile ahead) or accepts the local traffic; `blockdance
// ptx` reports the stack frame of every kernel so the choice stays visible. (The driver's JIT on the GPU is a
// newer ptxas and may behave differently: measure there.)
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace BlockDance.Kernels.TensorCore;

public static class CpAsync
{
    /// <summary>Copies 16 bytes from global byte `srcByte` (address `srcBase` + srcByte on CUDA, view `src`
    /// on the CPU) to shared byte `dstByte`; only the first `srcBytes` (0..16, multiple of 4) are read, the rest zero-filled.</summary>
    public static void Copy16(ArrayView<uint> smem, int dstByte, ArrayView<uint> src, ulong srcBase, long srcByte, int srcBytes)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("{ .reg .u32 d; mov.u32 d, __dyn_shared_alloca; add.u32 d, d, %0; cp.async.cg.shared.global [d], [%1], 16, %2; }",
                (uint)dstByte, srcBase + (ulong)srcByte, (uint)srcBytes);
        }
        else
        {
            // Unrolled by hand: a loop here, even in this branch that the GPU never takes, keeps ptxas from
            // promoting the asm operands of later mma.sync calls to registers (measured: 40-byte stack frame).
            int dw = dstByte >> 2;
            long sw = srcByte >> 2;
            smem[dw] = srcBytes > 0 ? src[sw] : 0u;
            smem[dw + 1] = srcBytes > 4 ? src[sw + 1] : 0u;
            smem[dw + 2] = srcBytes > 8 ? src[sw + 2] : 0u;
            smem[dw + 3] = srcBytes > 12 ? src[sw + 3] : 0u;
        }
    }

    /// <summary>Closes the copies issued so far by this thread into one group.</summary>
    public static void Commit()
    {
        if (CudaAsm.IsSupported) CudaAsm.Emit("cp.async.commit_group;");
    }

    /// <summary>Waits until none of this thread's groups is pending.</summary>
    public static void Wait0()
    {
        if (CudaAsm.IsSupported) CudaAsm.Emit("cp.async.wait_group 0;");
    }

    /// <summary>Waits until at most 1 of this thread's newest groups is pending (3-stage pipeline).</summary>
    public static void Wait1()
    {
        if (CudaAsm.IsSupported) CudaAsm.Emit("cp.async.wait_group 1;");
    }

    /// <summary>Waits until at most 2 of this thread's newest groups are pending (4-stage pipeline).</summary>
    public static void Wait2()
    {
        if (CudaAsm.IsSupported) CudaAsm.Emit("cp.async.wait_group 2;");
    }
}

// The host backend's plumbing (`--device cpu`): host kernels work in place on the CPU accelerator's buffers
// (so `Tensor` and every caller stay as they are) and split their work over a deterministic parallel loop.
//
// Determinism: a host kernel splits its output into work items fixed by the problem's shape (rows, tiles,
// heads), never by the thread count, and each item computes its outputs with a fixed reduction order, so
// the result is bit-identical for any --threads and any scheduling.
//
// Ordering: the CPU accelerator runs ILGPU kernels to completion before Launch returns, so a host kernel
// that follows an ILGPU kernel (an op without a host version) sees its results; Begin still waits on the
// accelerator's stream (not counted as a host wait: nothing crosses between host and device memory).
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class Host
{
    /// <summary>The first element of a view of the CPU accelerator's memory.</summary>
    public static T* Ptr<T>(ArrayView<T> v) where T : unmanaged => (T*)v.LoadEffectiveAddressAsPtr();

    /// <summary>A view of the CPU accelerator's memory as a span (at most 2^31 − 1 elements).</summary>
    public static Span<T> Span<T>(ArrayView<T> v) where T : unmanaged =>
        v.Length == 0 ? default : new Span<T>(Ptr(v), checked((int)v.Length));

    /// <summary>Counts a launch of host kernel `name` and makes earlier ILGPU launches visible.</summary>
    public static void Begin(ComputeDevice dev, string name)
    {
        if (!dev.IsHost) throw new InvalidOperationException($"host kernel {name} launched on {dev.Name}, which is not the host backend");
        dev.Kernels.CountHost(name);
        dev.Accelerator.DefaultStream.Synchronize();
    }

    /// <summary>Runs body(i) for i in [0, count) on the device's threads (see Determinism above).</summary>
    public static void For(ComputeDevice dev, string name, int count, Action<int> body)
    {
        Begin(dev, name);
        if (count <= 1 || dev.Threads == 1)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        Parallel.For(0, count, dev.HostParallelOptions, body);
    }
}

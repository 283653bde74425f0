// Host → device copies that do not make the host wait (ComputeDevice.UploadQueued): the values are written into a
// page-locked (pinned) staging slot, and the copy from that slot into the device buffer is queued on the accelerator's
// default stream — behind the kernels already launched, ahead of the kernels launched after it, which read the new
// values (one stream runs in order). What a sampling step uploads this way: the row list of a gathered sub-batch
// (IBlockModel.RunRows) and the per-row weights of a FeatureCombine, on steps where the samples decided differently.
//
// Why a ring of slots, and when a slot may be written again. On CUDA an asynchronous copy reads its pinned source when
// the stream reaches it, which may be long after UploadQueued returned (the host runs ahead of the device). Writing
// the same slot again before then would change what the earlier copy sends. So the ring hands out its Slots slots in
// turn, each slot records a CUDA event on the stream right after its copy, and before a slot is written again its
// event is queried: complete (the usual case: a step queues a few uploads, and the device is rarely a whole ring of
// uploads behind the host) → write it; not yet → wait for that event, counted in ComputeDevice.HostWaits and logged
// once, so a run that does wait shows it in its count. The device buffer itself needs no ring: the next queued copy
// into it runs after the kernels queued before it, which read the previous values.
// On ILGPU's CPU accelerator (the host backend and the simulator) a copy has finished when the call returns, so every
// slot is free again at once; the same code runs, minus the events.
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace BlockDance.Kernels;

public sealed class StagingRing<T> : IDisposable where T : unmanaged
{
    /// <summary>Slots in the ring: a slot is written again only after Slots − 1 other uploads.</summary>
    public const int Slots = 32;
    /// <summary>Elements a slot holds at first; a longer upload grows that slot (logged).</summary>
    const int InitialCapacity = 1024;

    readonly ComputeDevice device;
    readonly PageLockedArray1D<T>?[] slots = new PageLockedArray1D<T>?[Slots];
    readonly IntPtr[] events = new IntPtr[Slots];     // CUDA only: recorded after the slot's last copy
    readonly bool[] pending = new bool[Slots];
    int next;
    bool waitLogged;

    public StagingRing(ComputeDevice device) => this.device = device;

    /// <summary>Pinned bytes held by the ring.</summary>
    public long Bytes => slots.Sum(s => s?.Length ?? 0) * (long)System.Runtime.CompilerServices.Unsafe.SizeOf<T>();

    /// <summary>Queues dst[0..values.Length) = values on the default stream; returns without waiting for the device.</summary>
    public void Upload(ArrayView<T> dst, ReadOnlySpan<T> values)
    {
        if (values.Length > dst.Length)
            throw new ArgumentException($"staged upload: {values.Length} elements into a buffer of {dst.Length}");
        if (values.Length == 0) return;
        int k = next;
        next = (next + 1) % Slots;
        WaitUntilFree(k);
        var slot = slots[k];
        if (slot is null || slot.Length < values.Length)
        {
            if (slot != null) Log.Info($"staging slot grown to {values.Length} elements (was {slot.Length})");
            slot?.Dispose();
            slots[k] = slot = device.Accelerator.AllocatePageLocked1D<T>(Math.Max(InitialCapacity, values.Length));
        }
        values.CopyTo(slot.Span);
        var stream = device.Accelerator.DefaultStream;
        dst.SubView(0, values.Length).CopyFrom(stream, slot.ArrayView.SubView(0, values.Length));
        if (device.IsCuda) Record(k, stream);
    }

    void Record(int k, AcceleratorStream stream)
    {
        using var bound = device.Accelerator.BindScoped();
        if (events[k] == IntPtr.Zero) Check(CudaAPI.CurrentAPI.CreateEvent(out events[k], CudaEventFlags.CU_EVENT_DISABLE_TIMING));
        Check(CudaAPI.CurrentAPI.RecordEvent(events[k], ((CudaStream)stream).StreamPtr));
        pending[k] = true;
    }

    /// <summary>CUDA: the slot's last copy has run (its event completed), else wait for it (a counted host wait).</summary>
    void WaitUntilFree(int k)
    {
        if (!pending[k]) return;
        using var bound = device.Accelerator.BindScoped();
        var status = CudaAPI.CurrentAPI.QueryEvent(events[k]);
        if (status == CudaError.CUDA_ERROR_NOT_READY)
        {
            if (!waitLogged) Log.Info($"staging ring: the device is {Slots} uploads behind; waiting for the oldest copy (counted as a host wait)");
            waitLogged = true;
            device.CountHostWait();
            status = CudaAPI.CurrentAPI.SynchronizeEvent(events[k]);
        }
        Check(status);
        pending[k] = false;
    }

    static void Check(CudaError status)
    {
        if (status != CudaError.CUDA_SUCCESS) throw new CudaException(status);
    }

    public void Dispose()
    {
        if (device.IsCuda)
        {
            using var bound = device.Accelerator.BindScoped();
            for (int k = 0; k < Slots; k++)
                if (events[k] != IntPtr.Zero)
                {
                    if (pending[k]) CudaAPI.CurrentAPI.SynchronizeEvent(events[k]);   // the copy still reads the slot
                    CudaAPI.CurrentAPI.DestroyEvent(events[k]);
                    events[k] = IntPtr.Zero;
                }
        }
        for (int k = 0; k < Slots; k++)
        {
            slots[k]?.Dispose();
            slots[k] = null;
        }
    }
}

// The device layer: one ILGPU context + accelerator, chosen once per process.
//
//   auto → the first CUDA device if a driver and a GPU exist, else the host backend (cpu)
//   cuda → a CUDA device or a clear error (never a silent fallback)
//   cpu  → the host backend: ops run hand-written SIMD host kernels (src/Kernels/Host, Parallel.For over
//          `Threads` threads) directly on the CPU accelerator's buffers; an op without a host version
//          launches its ILGPU kernel on the same memory (logged once per kernel, KernelCache)
//   sim  → ILGPU's CPU accelerator running the ILGPU kernels (a simulator: ~1 µs per simulated thread, so
//          kernels launch few threads that each loop over a lot of work; see LaunchWidth) — what the
//          kernel correctness tests run
//
// Kernels are compiled (PTX on CUDA) on first use and cached per device (KernelCache).
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace BlockDance.Kernels;

public enum DeviceKind { Auto, Cuda, Cpu, Sim }

/// <summary>Raised when the requested device cannot be provided (no GPU, out of memory…).</summary>
public sealed class DeviceException(string message) : InputException(message);

public sealed class ComputeDevice : IDisposable
{
    public Context Context { get; }
    public Accelerator Accelerator { get; }
    public bool IsCuda => Accelerator.AcceleratorType == AcceleratorType.Cuda;
    /// <summary>The host backend (`cpu`): ops with a host version run it instead of their ILGPU kernel.</summary>
    public bool IsHost { get; }
    /// <summary>The ILGPU CPU accelerator running ILGPU kernels (`sim`).</summary>
    public bool IsSimulator => !IsCuda && !IsHost;
    /// <summary>Threads a host kernel may use (--threads; default all cores). Host kernels split work into
    /// chunks that do not depend on this number, so results are identical for any thread count.</summary>
    public int Threads { get; }
    /// <summary>Parallel.For options of the host kernels (Threads workers).</summary>
    public ParallelOptions HostParallelOptions { get; }
    public string Name => Accelerator.Name;
    /// <summary>Device memory; for the CPU accelerator (which reports no real limit) the machine's memory.</summary>
    public long MemoryBytes => IsCuda ? Accelerator.MemorySize : GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    public KernelCache Kernels { get; }
    /// <summary>Precision of the GEMM operands of layers loaded on this device (--precision; Linear reads it at
    /// load time). Fp32 unless a command sets it.</summary>
    public Precision Precision { get; set; } = Precision.Fp32;
    /// <summary>Bytes currently held by Tensors on this device (reported in summaries).</summary>
    public long AllocatedBytes { get; internal set; }

    /// <summary>Number of work items a grid-stride kernel is launched with for `work` elements.
    /// CPU: one simulated thread costs ~1 µs, so use a few per core. CUDA: enough to fill the GPU.</summary>
    public int LaunchWidth(long work)
    {
        long cap = IsCuda ? (long)Accelerator.NumMultiprocessors * Accelerator.MaxNumThreadsPerMultiprocessor
                          : CpuWidth;
        return (int)Math.Max(1, Math.Min(work, cap));
    }

    // BLOCKDANCE_CPU_WIDTH overrides the CPU launch width (tuning experiments; see DEVELOPERS.md).
    readonly int CpuWidth = int.TryParse(Environment.GetEnvironmentVariable("BLOCKDANCE_CPU_WIDTH"), out var w) ? w : 4 * Environment.ProcessorCount;

    ComputeDevice(Context ctx, Accelerator acc, bool host, int threads)
    {
        Context = ctx;
        Accelerator = acc;
        IsHost = host;
        Threads = threads;
        HostParallelOptions = new ParallelOptions { MaxDegreeOfParallelism = threads };
        Kernels = new KernelCache(acc, host);
    }

    /// <param name="cpuWarpsPerGroup">CPU accelerator only: 32-lane warps per group. 1 (default) for the
    /// grid-stride kernels the model runs there; 8 lets the tiled 256-thread GPU versions (GEMM v2/v3) run
    /// on the simulator too, as the tests and `blockdance kernels --device cpu` do.</param>
    /// <param name="threads">Host backend only: threads for host kernels (null: all cores).</param>
    public static ComputeDevice Create(DeviceKind kind, int cpuWarpsPerGroup = 1, int? threads = null)
    {
        if (threads is < 1) throw new InvalidValueException("threads", "at least 1", threads.Value.ToString());
        int nThreads = threads ?? Environment.ProcessorCount;
        var ctx = Context.Create(b =>
        {
            // O2: inline-PTX operands of the tensor-core kernels (GEMM v3) stay in registers only at O2 (at O1
            // ILGPU leaves them in local memory around every mma). Affects PTX only: the CPU accelerator runs
            // the kernels' .NET code directly. `blockdance ptx` compiles every kernel at the same level.
            b.Optimize(OptimizationLevel.O2).EnableAlgorithms();
            if (kind is DeviceKind.Auto or DeviceKind.Cuda) b.Cuda();
            // Each simulated thread is an OS thread; 32-wide warps so warp-level code behaves as on CUDA.
            // With 8 warps per group (tiled versions at test sizes) one multiprocessor: each simulated
            // thread is an OS thread, and 256 per multiprocessor × cores would only add contention.
            b.CPU(new CPUDevice(32, cpuWarpsPerGroup, cpuWarpsPerGroup > 1 ? 1 : Math.Max(1, Environment.ProcessorCount)));
        });
        try
        {
            if (kind is DeviceKind.Auto or DeviceKind.Cuda)
            {
                var cuda = ctx.GetCudaDevices();
                if (cuda.Count > 0)
                    return new ComputeDevice(ctx, cuda[0].CreateAccelerator(ctx), false, nThreads);
                if (kind == DeviceKind.Cuda)
                    throw new DeviceException("device cuda: expected a CUDA GPU, found none (no NVIDIA driver or no device); use the CPU (device cpu or auto)");
                Log.Info("no CUDA device found: running on the CPU (host kernels)");
            }
            var cpu = ctx.GetCPUDevices()[0];
            return new ComputeDevice(ctx, cpu.CreateCPUAccelerator(ctx, CPUAcceleratorMode.Parallel), kind != DeviceKind.Sim, nThreads);
        }
        catch
        {
            ctx.Dispose();
            throw;
        }
    }

    public static DeviceKind ParseKind(string s) => s switch
    {
        "auto" => DeviceKind.Auto,
        "cuda" => DeviceKind.Cuda,
        "cpu" => DeviceKind.Cpu,
        "sim" => DeviceKind.Sim,
        _ => throw new InvalidValueException("device", "auto, cuda, cpu or sim", $"'{s}'"),
    };

    public string Describe() =>
        $"{(IsCuda ? "CUDA" : IsHost ? "CPU (host kernels)" : "ILGPU CPU accelerator (simulator)")}: {Name}, {MemoryBytes / (1024.0 * 1024 * 1024):F1} GiB" +
        (IsCuda ? "" : IsHost ? $", {Threads} threads" : $", {Environment.ProcessorCount} cores");

    /// <summary>Blocks the host until the device has finished everything queued (counted in HostWaits).</summary>
    public void Synchronize()
    {
        HostWaits++;
        Accelerator.Synchronize();
    }

    /// <summary>
    /// Times the host waited for the device: Synchronize calls and blocking copies between host and device
    /// (Tensor.ToHost/CopyFromHost, Upload; not UploadQueued, which waits only when the device is a whole staging ring of
    /// uploads behind, and then counts that here). A sampling step needs none — kernels are queued on one stream and
    /// the host runs ahead — so benchmarks report this per step and a test holds it at zero.
    /// </summary>
    public long HostWaits { get; private set; }

    /// <summary>Records a host wait done outside this class (a blocking read-back of a raw buffer).</summary>
    public void CountHostWait() => HostWaits++;

    /// <summary>Blocking host → device copy of a small array (counted as a host wait).</summary>
    public void Upload<T>(ArrayView<T> dst, T[] src) where T : unmanaged
    {
        HostWaits++;
        dst.SubView(0, src.Length).CopyFromCPU(src);
    }

    readonly Dictionary<Type, IDisposable> rings = new();

    /// <summary>Queued host → device copy of a small array through a page-locked staging slot (StagingRing): no host
    /// wait. The kernels launched after it read the new values; src may be changed as soon as this returns.</summary>
    public void UploadQueued<T>(ArrayView<T> dst, ReadOnlySpan<T> src) where T : unmanaged
    {
        if (!rings.TryGetValue(typeof(T), out var ring)) rings[typeof(T)] = ring = new StagingRing<T>(this);
        ((StagingRing<T>)ring).Upload(dst, src);
    }

    public void Dispose()
    {
        foreach (var r in rings.Values) r.Dispose();
        rings.Clear();
        Accelerator.Dispose();
        Context.Dispose();
    }
}

// A GPU-resident tensor: one device buffer plus a row-major shape.
// Storage is float32 today; ElementType leaves room for fp16/bf16 storage later
// (kernels would read it through a conversion, the shape logic stays the same).
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public enum ElementType { F32 }

public sealed class Tensor : IDisposable
{
    readonly MemoryBuffer1D<float, Stride1D.Dense> buffer;
    public ComputeDevice Device { get; }
    public int[] Shape { get; private set; }
    public ElementType ElementType => ElementType.F32;
    public long Length { get; private set; }
    public long Capacity => buffer.Length;
    public long Bytes => buffer.LengthInBytes;
    public string Name { get; }

    /// <summary>The elements in use (Length of them), as a dense device view.</summary>
    public ArrayView<float> View => buffer.View.SubView(0, Length);

    Tensor(ComputeDevice dev, MemoryBuffer1D<float, Stride1D.Dense> buf, int[] shape, string name)
    {
        Device = dev;
        buffer = buf;
        Shape = shape;
        Length = Numel(shape);
        Name = name;
    }

    public static long Numel(int[] shape)
    {
        long n = 1;
        foreach (var s in shape) n *= s;
        return n;
    }

    /// <summary>Allocates once (a driver call on CUDA); callers keep and reuse the tensor.</summary>
    public static Tensor Allocate(ComputeDevice dev, string name, params int[] shape)
    {
        long n = Numel(shape);
        try
        {
            var buf = dev.Accelerator.Allocate1D<float>(Math.Max(1, n));
            dev.AllocatedBytes += buf.LengthInBytes;
            return new Tensor(dev, buf, (int[])shape.Clone(), name);
        }
        catch (Exception e) when (DeviceMemory.IsOutOfMemory(e))
        {
            throw new DeviceException(
                $"out of device memory allocating '{name}' {ShapeString(shape)} ({n * 4 / 1048576.0:F1} MiB): " +
                $"{dev.AllocatedBytes / 1048576.0:F0} MiB already allocated of {dev.MemoryBytes / 1048576.0:F0} MiB on {dev.Name}; try a smaller batch");
        }
    }

    public static Tensor FromHost(ComputeDevice dev, string name, float[] data, params int[] shape)
    {
        if (Numel(shape) != data.Length)
            throw new ArgumentException($"{name}: shape {ShapeString(shape)} has {Numel(shape)} elements, data has {data.Length}");
        var t = Allocate(dev, name, shape);
        t.CopyFromHost(data);
        return t;
    }

    /// <summary>Reinterprets the buffer with a new shape of at most Capacity elements (no allocation).
    /// Used to run a smaller batch through buffers sized for the largest one.</summary>
    public void Reshape(params int[] shape)
    {
        long n = Numel(shape);
        if (n > buffer.Length)
            throw new ArgumentException($"{Name}: cannot view {buffer.Length} elements as {ShapeString(shape)}");
        Shape = (int[])shape.Clone();
        Length = n;
    }

    public void CopyFromHost(float[] data)
    {
        if (data.Length != Length)
            throw new ArgumentException($"{Name}: expected {Length} elements, got {data.Length}");
        Device.CountHostWait();
        View.CopyFromCPU(data);
    }

    /// <summary>Sets every element to 0 on the device (queued: no host wait).</summary>
    public void Zero() => View.MemSetToZero();

    public float[] ToHost()
    {
        var a = new float[Length];
        Device.CountHostWait();
        View.CopyToCPU(a);
        return a;
    }

    public void CopyFrom(Tensor src)
    {
        if (src.Length != Length) throw new ArgumentException($"{Name}: copy from {src.Name} with {src.Length} elements, expected {Length}");
        src.View.CopyTo(View);
    }

    /// <summary>Copies elements offset..offset + count − 1 of src into the same elements of this tensor on the device
    /// (queued: no host wait).</summary>
    public void CopyFrom(Tensor src, long offset, long count)
    {
        if (offset < 0 || count < 0 || offset + count > src.Length || offset + count > Length)
            throw new ArgumentException($"{Name}: copy of elements {offset}..{offset + count - 1} from {src.Name} ({src.Length}) into {Length}");
        src.View.SubView(offset, count).CopyTo(View.SubView(offset, count));
    }

    public string ShapeString() => ShapeString(Shape);
    public static string ShapeString(int[] shape) => "(" + string.Join(", ", shape) + ")";
    public override string ToString() => $"{Name} {ShapeString()}";

    public void Dispose()
    {
        Device.AllocatedBytes -= buffer.LengthInBytes;
        buffer.Dispose();
    }
}

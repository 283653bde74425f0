// Harness entry for RmsNorm (T5's norm): seeded inputs, validation of a version against RmsNorm.Reference,
// then a launch closure for timing. Shapes: "small" fits the CPU accelerator; "xl" is T5-XXL on PixArt's
// prompt batch (prompt + negative, 120 tokens: 240 rows of 4096).
using ILGPU.Runtime;

namespace BlockDance.Kernels.Harness;

public sealed class RmsNormOp : IKernelOp
{
    public string Name => "rmsnorm";
    public IReadOnlyList<string> Versions { get; } = ["v1", "host"];

    public IReadOnlyList<KernelShape> Shapes(string set) => set switch
    {
        "small" => [Shape(16, 64), Shape(33, 72)],
        "xl" => [Shape(240, 4096)],
        _ => throw new InvalidValueException("shapes", "small or xl", set),
    };

    static KernelShape Shape(int rows, int d) => new($"{rows}x{d}", 3.0 * rows * d, 4.0 * (2L * rows * d + d));

    /// <summary>Run dispatches by device: v1 (the ILGPU kernel) on the simulator and CUDA, host on the host backend.</summary>
    public bool Supports(ComputeDevice dev, string version) => Versions.Contains(version) && (version == "host") == dev.IsHost;

    static float[] Scaled(float[] a, float scale)
    {
        for (int i = 0; i < a.Length; i++) a[i] *= scale;
        return a;
    }

    public KernelTrial Prepare(ComputeDevice dev, string version, KernelShape shape)
    {
        if (!Versions.Contains(version)) throw new InvalidValueException("version", string.Join("|", Versions), version);
        var dims = shape.Label.Split('x').Select(int.Parse).ToArray();
        int rows = dims[0], d = dims[1];
        var x = Scaled(AttentionOp.Seeded(1, (long)rows * d), 3f);
        var w = Scaled(AttentionOp.Seeded(2, d), 1f);
        var tx = Tensor.FromHost(dev, "x", x, rows, d);
        var tw = Tensor.FromHost(dev, "w", w, d);
        var ty = Tensor.Allocate(dev, "y", rows, d);
        void Launch() => RmsNorm.Run(dev, tx.View, tw.View, ty.View, rows, d, 1e-6f);
        Launch();
        var expected = new float[rows * d];
        RmsNorm.Reference(x, w, expected, rows, d, 1e-6f);
        var got = ty.ToHost();
        double maxErr = 0;
        var mismatches = new List<string>();
        for (int i = 0; i < got.Length; i++) AttentionOp.Compare(expected[i], got[i], i, 1e-5, 1e-5, ref maxErr, mismatches);
        var validation = new Validation(mismatches.Count == 0, maxErr, 1e-5, 1e-5, mismatches);
        return new KernelTrial(validation, Launch, () => { tx.Dispose(); tw.Dispose(); ty.Dispose(); });
    }
}

// One sampling path for every model: the schedule decides the timesteps of every sampler (DPM-Solver++ included),
// settings a sampler does not use are refused, PixArt-α loads at the device's precision through the same layer path
// as the DiT, and a NaN from finite inputs is the engine's fault (internal error) while NaN noise stays bad input.
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Sampler;
using BlockDance.Transformer;
using ILGPU.Runtime.Cuda;
using Xunit;

namespace BlockDance.Tests;

public class SamplingPathTests
{
    /// <summary>Records the timesteps it is asked for; predicts zero noise.</summary>
    sealed class Recorder(ComputeDevice dev, int[] shape) : IDenoiser, IDisposable
    {
        public List<int> Timesteps { get; } = new();
        readonly Tensor output = Tensor.FromHost(dev, "out", new float[Tensor.Numel(shape)], shape);
        public Tensor Denoise(Tensor x, int t, int step) { Timesteps.Add(t); return output; }
        public void Dispose() => output.Dispose();
    }

    [Theory]
    [InlineData(Spacing.Linspace)]
    [InlineData(Spacing.Even)]
    public void DpmSolver_VisitsTheSchedulesTimesteps(Spacing spacing)
    {
        var dev = TestDevices.Get("cpu");
        var schedule = new Schedule(10, spacing);
        using var x = Tensor.FromHost(dev, "x", new float[16], 1, 1, 4, 4);
        using var den = new Recorder(dev, [1, 1, 4, 4]);
        new DiffusionSampler(schedule, SamplerKind.DpmSolver2M).Run(den, x, new SeededNoise(0), 1);
        Assert.Equal(schedule.Timesteps.Reverse(), den.Timesteps);
        if (spacing == Spacing.Linspace) Assert.Equal(DpmSolver.LinspaceTimesteps(10), den.Timesteps);   // PixArt-α's: 999, 899, …
        else Assert.Equal(0, den.Timesteps[^1]);                                                     // even spacing ends at t = 0
    }

    [Theory]
    [InlineData(SamplerKind.DpmSolver2M)]
    [InlineData(SamplerKind.Ddpm)]
    public void Eta_IsRefusedBySamplersThatDoNotUseIt(SamplerKind kind)
    {
        var e = Assert.Throws<InvalidValueException>(() => new DiffusionSampler(new Schedule(10, Spacing.Even), kind, eta: 0.5));
        Assert.Contains("η", e.Message);
        var r = CliRunner.Run("sample", "--sampler", kind == SamplerKind.Ddpm ? "ddpm" : "dpm++2m", "--eta", "0.5", "--device", "cpu",
            "--out", Path.Combine(CliRunner.TempDir(), "x.png"));
        Assert.Equal(2, r.Code);
        Assert.Contains("--eta", r.Err);
    }

    [Fact]
    public void PixArt_UnderBf16_StoresItsLayersInBf16_AsTheDiT()
    {
        using var dev = ComputeDevice.Create(DeviceKind.Cpu);
        dev.Precision = Precision.Bf16;
        using var model = PixArt.Load(dev, CliRunner.Fixture("pixart_tiny"));
        var b = model.Blocks[0];
        Assert.All(new[] { b.AttnQkv, b.AttnProj, b.CrossQ, b.CrossKv, b.CrossProj, b.MlpFc1, b.MlpFc2 }, l => Assert.Equal(Precision.Bf16, l.Precision));

        // and the forward differs from fp32's (the GEMM operands are rounded), while staying close
        float[] Forward(ComputeDevice d, PixArt m)
        {
            var prompts = PromptEmbeds.Load(CliRunner.Fixture("pixart_traj.safetensors"), null, m.PixArtConfig.CaptionChannels);
            m.SetCaptions(prompts.Prompts.Embeds, prompts.Prompts.Mask, 1, prompts.Prompts.Tokens);
            var cfg = m.PixArtConfig;
            using var x = Tensor.FromHost(d, "x", Tolerance.Random(1, cfg.InChannels * cfg.LatentSize * cfg.LatentSize), 1, cfg.InChannels, cfg.LatentSize, cfg.LatentSize);
            using var o = Tensor.Allocate(d, "o", 1, cfg.OutChannels, cfg.LatentSize, cfg.LatentSize);
            m.Forward(x, [500f], [0], o);
            return o.ToHost();
        }
        var bf16 = Forward(dev, model);
        var cpu = TestDevices.Get("cpu");
        using var fp32Model = PixArt.Load(cpu, CliRunner.Fixture("pixart_tiny"));
        var fp32 = Forward(cpu, fp32Model);
        Assert.NotEqual(fp32, bf16);
        Assert.True(Tolerance.MaxAbsError(fp32, bf16) < 0.1 * fp32.Max(MathF.Abs));
    }

    [Fact]
    public void NanInitialNoise_IsBadInput_NotTheEngines()
    {
        var dev = TestDevices.Get("cpu");
        using var model = ModelLoader.Load(dev, CliRunner.Fixture("dit_p2.weights.safetensors"));
        var c = model.Config;
        var noise = new float[2 * c.InChannels * c.InputSize * c.InputSize];
        noise[5] = float.NaN;
        var e = Assert.ThrowsAny<InputException>(() => SamplingSession.Run(model, new SamplingOptions { Classes = [0, 1], Steps = 2, InitialNoise = noise }));
        Assert.Contains("finite", e.Message);
    }

    [Fact]
    public void OutOfMemory_IsRecognisedByTheErrorCode_NotByATypeName()
    {
        Assert.True(DeviceMemory.IsOutOfMemory(new OutOfMemoryException()));
        Assert.False(DeviceMemory.IsOutOfMemory(new CudaException("an illegal memory access was encountered")));   // a Cuda type, not OOM
        Assert.False(DeviceMemory.IsOutOfMemory(new CudaLookalikeException()));
        Assert.False(BlockDance.Sampler.Program.IsBadInput(new CudaLookalikeException()));
    }

    sealed class CudaLookalikeException() : Exception("CudaLookalike: not an accelerator error");
}

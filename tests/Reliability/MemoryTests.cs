// Memory: the plan computed before allocation matches what the model allocates, an over-budget request is
// split into batches (or refused with need and budget named), and 1,000 consecutive samplings in one process
// keep device and host memory flat.
using System.Diagnostics;
using BlockDance.Kernels;
using BlockDance.Sampler;
using BlockDance.Transformer;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class MemoryTests(ITestOutputHelper output)
{
    static readonly string P4 = CliRunner.Fixture("dit_p4.weights.safetensors");

    [SkippableTheory]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void MemoryPlan_MatchesWhatTheModelAllocates(string kind)
    {
        var dev = TestDevices.Get(kind);
        long before = dev.AllocatedBytes;
        using var model = ModelLoader.Load(dev, P4);
        Assert.Equal(MemoryPlan.WeightBytes(model.Config), dev.AllocatedBytes - before);
        long loaded = dev.AllocatedBytes;
        model.Prepare(6);
        // Tensors are counted by AllocatedBytes; the two int32 index buffers (labels, rows) are not.
        Assert.Equal(MemoryPlan.WorkspaceBytes(model.Config, 6) - 2 * 4 * 6, dev.AllocatedBytes - loaded);
    }

    [Fact]
    public void PixArtMemoryPlan_MatchesWhatTheModelAllocates()
    {
        using var dev = ComputeDevice.Create(DeviceKind.Cpu);
        var folder = CliRunner.Fixture("pixart_tiny");
        var cfg = PixArtConfig.Read(folder);
        var prompts = PromptEmbeds.Load(CliRunner.Fixture("pixart_traj.safetensors"), null, cfg.CaptionChannels);
        var plan = PixArtPipeline.Footprint(folder, cfg, prompts.Prompts.Tokens);
        long before = dev.AllocatedBytes;
        using var model = PixArt.Load(dev, folder);
        long weights = dev.AllocatedBytes - before;
        // every stored tensor and the position table, once (the load check's scratch buffer is freed)
        Assert.Equal(plan.WeightBytes, weights);
        var two = CaptionSet.Concat(prompts.Prompts, prompts.Prompts);
        model.SetCaptions(two.Embeds, two.Mask, 2, two.Tokens);
        model.Prepare(2);
        long buffers = dev.AllocatedBytes - before - weights;
        // the int32 buffers (labels, rows, caption rows) are not counted by AllocatedBytes: the plan may exceed by them
        output.WriteLine($"planned {plan.BufferBytes(2)} B of buffers for model batch 2, allocated {buffers} B (+ int32 index buffers)");
        Assert.InRange(plan.BufferBytes(2) - buffers, 0, 3 * 4 * 2);
    }

    [SkippableFact]
    public void OverBudgetBatch_IsSplit_AndLogged_AndOneSampleOverBudget_IsAClearError()
    {
        var dev = TestDevices.Get("cpu");
        var cfg = new DiTConfig(6, 96, 4, 2, 1, 2, 14, 10);   // the demo model
        var classes = Enumerable.Range(0, 2000).Select(i => i % 10).ToList();
        var o = new SamplingOptions { Classes = classes, Steps = 1 };
        var all = MemoryPlan.Need(cfg, 2000, guided: true, stepNoise: false, cached: false);
        Assert.True(all.Total > 800L << 20, $"2,000 samples need {all.Total >> 20} MiB");   // the 820 MiB, now computed up front
        var old = Environment.GetEnvironmentVariable(MemoryPlan.LimitVariable);
        var err = Console.Error;
        try
        {
            var log = new StringWriter();
            Console.SetError(log);
            Environment.SetEnvironmentVariable(MemoryPlan.LimitVariable, "128");      // budget: 50% of 128 MiB on the CPU accelerator
            var fitted = MemoryPlan.Fit(dev, cfg, o, cached: false);
            long budget = MemoryPlan.Budget(dev);
            Assert.Equal(64L << 20, budget);
            Assert.InRange(fitted.Batch, 1, 1999);
            Assert.True(MemoryPlan.Need(cfg, fitted.Batch, true, false, false).Total <= budget);
            Assert.True(MemoryPlan.Need(cfg, fitted.Batch + 1, true, false, false).Total > budget);
            Assert.Contains($"sampling in batches of {fitted.Batch}", log.ToString());

            Environment.SetEnvironmentVariable(MemoryPlan.LimitVariable, "1");
            var e = Assert.Throws<DeviceException>(() => MemoryPlan.Fit(dev, cfg, o, cached: false));
            Assert.Contains("out of device memory: expected at most 0.5 MiB", e.Message);
            Assert.Contains("for one sample (weights 4.1 MiB", e.Message);
        }
        finally
        {
            Console.SetError(err);
            Environment.SetEnvironmentVariable(MemoryPlan.LimitVariable, old);
        }
    }

    [Fact]
    public void TooLittleDeviceMemory_IsOneLineError_BeforeLoading()
    {
        var old = Environment.GetEnvironmentVariable(MemoryPlan.LimitVariable);
        try
        {
            Environment.SetEnvironmentVariable(MemoryPlan.LimitVariable, "1");
            var dir = CliRunner.TempDir();
            var (code, stdout, err) = CliRunner.Run("sample", "--model", HostileFiles.DemoModel, "--device", "cpu", "--out", Path.Combine(dir, "x.png"));
            HostileFiles.AssertOneLineError(code, err, "out of device memory: expected at most 0.5 MiB");
            Assert.DoesNotContain("model:", stdout);
            Assert.Empty(Directory.GetFiles(dir));
        }
        finally { Environment.SetEnvironmentVariable(MemoryPlan.LimitVariable, old); }
    }

    /// <summary>Samplings of the long-run check: 1,000 (the count) with BLOCKDANCE_LONG_RUN=1000; CI runs 120,
    /// because one sampling costs ~80 ms on the CPU accelerator (its launch overhead), so 1,000 would add 80 s to the suite (120 take ~10 s).</summary>
    static int LongRunCount => int.TryParse(Environment.GetEnvironmentVariable("BLOCKDANCE_LONG_RUN"), out var n) && n > 100 ? n : 120;

    /// <summary>
    /// The long-run check: consecutive samplings (1 step, 1 sample, the 2-block fixture model) through SamplingSession,
    /// the API SampleCommand uses, on one loaded model. Bounds, measured from run 50 (after warm-up) to the end: device
    /// buffers exactly flat (every run frees what it allocates); managed heap growth under 1 MiB (a leaked host sample
    /// array per run would be 0.75 KiB × runs, a leaked denoiser or policy far more); process private memory growth under
    /// 32 MiB (native buffers of the CPU accelerator: a leaked workspace per run would exceed it within 100 runs).
    /// Measured with 1,000 runs (BLOCKDANCE_LONG_RUN=1000): see the README's reliability section.
    /// </summary>
    [SkippableFact]
    public void RepeatedSamplings_KeepDeviceAndHostMemoryFlat()
    {
        var dev = TestDevices.Get("cpu");
        using var model = ModelLoader.Load(dev, P4);
        var o = new SamplingOptions { Classes = [3], Steps = 1, Cfg = 1 };
        float[]? first = null;
        long dev0 = 0, heap0 = 0, priv0 = 0;
        int runs = LongRunCount;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < runs; i++)
        {
            var r = SamplingSession.Run(model, o with { Seed = (ulong)(i % 7) });
            if (i == 0) first = r.Samples;
            if (i == 7) Assert.Equal(first, r.Samples);           // same seed, same sample, however many runs came before
            if (i == 49)
            {
                dev0 = dev.AllocatedBytes;
                heap0 = GC.GetTotalMemory(forceFullCollection: true);
                priv0 = Process.GetCurrentProcess().PrivateMemorySize64;
            }
        }
        long dev1 = dev.AllocatedBytes, heap1 = GC.GetTotalMemory(forceFullCollection: true), priv1 = Process.GetCurrentProcess().PrivateMemorySize64;
        output.WriteLine($"{runs} samplings in {sw.Elapsed.TotalSeconds:F1} s; runs 50→{runs}: device {dev0}→{dev1} B, " +
                         $"heap {heap0 / 1024} → {heap1 / 1024} KiB, private {priv0 >> 20} → {priv1 >> 20} MiB");
        Assert.Equal(dev0, dev1);
        Assert.True(heap1 - heap0 < 1L << 20, $"managed heap grew by {(heap1 - heap0) / 1024} KiB");
        Assert.True(priv1 - priv0 < 32L << 20, $"private memory grew by {(priv1 - priv0) >> 20} MiB");
    }
}

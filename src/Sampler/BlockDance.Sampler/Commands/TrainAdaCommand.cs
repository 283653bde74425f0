// blockdance train-ada: learn BlockDance-Ada's per-sample reuse decisions with REINFORCE.
//
//   blockdance train-ada [--model FILE|DIR] [--device auto|cuda|cpu] [--out FILE]
//                        [--steps N] [--cfg X] [--samples 32] [--batch 16] [--epochs 16] [--lr 3e-3]
//                        [--lambda 2] [--rho 0.4] [--hidden 128] [--cache-block b | --learn-boundary b,b,…] [--init-n N]
//                        [--seed 1000] [--init-seed 0] [--quick]
//                        caption models: --prompt TEXT [--prompt TEXT …] | --prompt-embeds FILE [--negative FILE]
//
// Every model kind. A class-conditional DiT trains on its classes round robin (its defaults: 50 steps, cfg 4). A
// PixArt-α folder or an Open-Sora 1.0 STDiT needs the training prompts: repeatable --prompt TEXT (encoded by the
// folder's tokenizer and T5 on the run's device, as `sample --prompt`) or --prompt-embeds FILE (B, L, D) with its
// negatives as `sample` reads them; the training samples take the prompts in turn (sample i: prompt i mod P). The
// model, its captions and its options are read and loaded as `sample` loads them (ModelRun), with that kind's
// defaults for --steps and --cfg (PixArt-α 20 steps, cfg 4.5 on every channel; STDiT 100 steps, cfg 7); the network
// then reads each sample's caption summary (the masked mean of its caption features) instead of a class one-hot
// (AdaDecisionNetwork's header), and the file says so (condition caption, caption_width). --out defaults to
// models/ada_policy.safetensors for a DiT (the demo's shipped policy) and to MODEL.ada_policy.safetensors beside a caption
// model, where `sample --cache ada` looks for it.
//
// Reward per sample (the paper's form): R(u) = C(u) + λ·Q(u), λ = 2.
//   C(u) = fraction of the s − ρ decided steps that reuse (1 − Σu_t/(s − ρ)): the compute saved.
//   Q(u) = SSIM (11×11 Gaussian window, as `blockdance eval`) of the final sample to the UNCACHED final
//          sample from the same noise, images mapped to [0, 1], clamped to [0, 1]. A video sample: the mean SSIM over
//          its frames. A sample smaller than the window (the tiny test fixtures' 8×8 latents): the largest odd window
//          that fits. A latent sample is measured as its latents, as a pixel one (no VAE decode per episode).
// Why SSIM to the uncached sample and not the paper's ImageReward or the digit classifier: caching is an
// approximation of the uncached sampler, so what it can damage is exactly the distance to the uncached
// result from the same noise; SSIM measures that per sample, is 1 when nothing is reused, falls smoothly
// as reuse distorts strokes, and needs no extra network. The classifier's probability of the intended
// class saturates near 1 for most digits (a reused step rarely changes the class), so it would hardly
// penalise damage and the policy would learn "reuse everything"; an aesthetic score like ImageReward
// does not exist for 14×14 digits. SSIM is also what `eval` reports, so training and evaluation agree.
//
// Cost: the uncached trajectories (samples × s steps) run once: they give z_ρ, the step-(ρ−1) features
// and the reference. Each epoch then runs only steps ρ..s−1 for every sample (see AdaTrainer). The trainer samples with
// DDIM η = 0 whatever the model's default sampler (its steps after ρ are deterministic given z_ρ); the policy then
// applies to any sampler with the same step count, best to the one it was trained with (`sample --sampler ddim`).
// The training samples use seed 1000 (eval samples seed 0).
// --learn-boundary b,b,…: the network also picks each sample's boundary among those blocks (a softmax head, sampled
// in training, argmax at inference), and C(u, b) = (fraction reused)·(b + 1)/(b_max + 1): a reused step is worth the
// blocks it skips. --init-n N starts the step head at BlockDance-N's pattern instead of m ≈ 0.5 everywhere.
using System.Globalization;
using System.Diagnostics;
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Sampler.Ada;
using BlockDance.Sampler.Cli;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;

namespace BlockDance.Sampler.Commands;

public static class TrainAdaCommand
{
    /// <summary>The model the trainer runs, ready on the device, with one condition per training sample.</summary>
    sealed record Subject(IBlockModel Model, Conditioning Conditioning, string ConfigText, string Source) : IDisposable
    {
        public void Dispose() => ((IDisposable)Model).Dispose();
    }

    public static int Run(string[] argv)
    {
        var parsed = Args.Parse("train-ada", argv);
        if (parsed.Positional.Count > 0) throw new UsageException($"train-ada: unexpected argument '{parsed.Positional[0]}'");
        var modelPath = CommonOptions.ModelPath(parsed);
        var kind = ModelRun.KindOf(modelPath);
        var a = parsed.ForModel(kind);   // the kind's defaults: --steps, --cfg (Opts)
        var o = Options(a);
        var outPath = a.Get("out") ?? (kind == ModelKind.DiT ? CommonOptions.DefaultAdaPolicy : CommonOptions.AdaPolicyPathFor(modelPath));
        if (!outPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            throw new UsageException($"--out {outPath}: expected a .safetensors file name");
        AtomicFile.CheckWritable(outPath, "--out");

        // Everything the user gave is read and checked against the model's files before the device starts.
        var (open, shape, channels) = kind == ModelKind.DiT ? OpenDiT(a, modelPath, o.Samples) : OpenCaptioned(a, modelPath, o.Samples);
        o = Boundary(a, o, shape.Depth) with { CfgChannels = channels };
        if (o.Batch > o.Samples) o = o with { Batch = o.Samples };

        using var dev = CommonOptions.Device(a);
        using var subject = open(dev);
        Console.WriteLine($"model: {modelPath}\n       {subject.ConfigText}");
        Train(dev, subject, o, modelPath, outPath);
        return 0;
    }

    static AdaTrainOptions Options(Args a)
    {
        bool quick = a.Flag("quick");
        var o = new AdaTrainOptions
        {
            Steps = a.GetInt("steps"),
            Cfg = (float)a.GetDouble("cfg"),
            Samples = a.GetInt("samples", orElse: quick ? 16 : 32),
            Batch = a.GetInt("batch"),
            Epochs = a.GetInt("epochs", orElse: quick ? 3 : 16),
            LearningRate = a.GetDouble("lr"),
            Lambda = a.GetDouble("lambda"),
            RhoFraction = a.GetDouble("rho"),
            Hidden = a.GetInt("hidden"),
            Seed = (ulong)a.GetInt("seed"),
            InitSeed = a.GetInt("init-seed"),
        };
        // ρ = round(rho·steps) cache steps before the decisions: it must leave at least one of each
        int rhoSteps = (int)Math.Round(o.RhoFraction * o.Steps, MidpointRounding.AwayFromZero);
        if (o.RhoFraction <= 0 || o.RhoFraction >= 1 || rhoSteps < 1 || rhoSteps > o.Steps - 1)
            throw new UsageException($"--rho: expected a fraction in (0, 1) with 1 ≤ round(rho·steps) ≤ steps − 1 = {o.Steps - 1}, found {a.Get("rho")} " +
                                     $"(round({o.RhoFraction}·{o.Steps}) = {rhoSteps})");
        if (a.Has("init-n")) o = o with { InitN = a.GetInt("init-n", orElse: 1) };
        return o;
    }

    /// <summary>--cache-block / --learn-boundary against the model's depth.</summary>
    static AdaTrainOptions Boundary(Args a, AdaTrainOptions o, int depth)
    {
        if (a.Has("cache-block"))
        {
            int b = a.GetInt("cache-block", orElse: 0);
            if (b < 0 || b > depth - 2) throw new UsageException($"--cache-block: expected 0..{depth - 2}, found {b}");
            o = o with { Boundary = b };
        }
        if (a.Has("learn-boundary"))
        {
            if (a.Has("cache-block")) throw new UsageException("--learn-boundary: learns the boundary, so --cache-block (a fixed one) does not apply");
            var bs = a.GetIntList("learn-boundary");
            if (bs.Count < 2 || bs.Zip(bs.Skip(1)).Any(p => p.First >= p.Second) || bs[0] < 0 || bs[^1] > depth - 2)
                throw new UsageException($"--learn-boundary: expected at least two ascending blocks in 0..{depth - 2}, found {string.Join(",", bs)}");
            o = o with { Boundaries = bs };
        }
        return o;
    }

    /// <summary>A class-conditional DiT: its classes round robin over the training samples.</summary>
    static (Func<ComputeDevice, Subject>, BlockShape, CfgChannels) OpenDiT(Args a, string modelPath, int samples)
    {
        foreach (var opt in (string[])["prompt", "prompt-embeds", "negative", "negative-prompt", "max-length", "variant", .. VideoOptions.Names])
            if (a.Has(opt)) throw new UsageException($"--{opt}: expected a text-conditional PixArt-α or STDiT model, found the class-conditional DiT {modelPath} (it trains on its classes in turn)");
        var src = ModelLoader.OpenSource(modelPath);
        try
        {
            var cfg = CommonOptions.DetectConfig(a, (IWeightSource)src);
            var classes = new ClassLabels(Enumerable.Range(0, samples).Select(i => i % cfg.NumClasses).ToArray());
            return (dev =>
            {
                try { return new Subject(DiTPipeline.Load(modelPath, dev, (IWeightSource)src, cfg, vaePath: null).Model, classes, cfg.ToString(), "classes round robin"); }
                finally { (src as IDisposable)?.Dispose(); }
            }, cfg.Shape, a.GetChoice<CfgChannels>("cfg-channels"));
        }
        catch
        {
            (src as IDisposable)?.Dispose();
            throw;
        }
    }

    /// <summary>A PixArt-α or STDiT model read and loaded as `sample` does (ModelRun), its prompts in turn over the samples;
    /// guidance on the channels `sample` guides for that kind (PixArt-α: all; STDiT: --cfg-channels).</summary>
    static (Func<ComputeDevice, Subject>, BlockShape, CfgChannels) OpenCaptioned(Args a, string modelPath, int samples)
    {
        if (!a.Has("prompt") && !a.Has("prompt-embeds"))
            throw new UsageException($"train-ada: expected the training prompts for the text-conditional {Opt.KindName(a.Kind)} model {modelPath}: " +
                                     "--prompt TEXT (repeatable) or --prompt-embeds FILE, found neither");
        // the sampling batch is sample's (ModelRun refuses it for these kinds); train-ada's --batch is its REINFORCE batch
        var run = ModelRun.For(a.With("batch", null), modelPath);
        return (dev =>
        {
            var conditioning = run.Conditioning(dev).Cycle(samples);
            return new Subject(run.Load(dev), conditioning, run.ConfigText, $"{run.Source.Key} {run.Source.Value}");
        }, run.Shape, run.Options.CfgChannels);
    }

    static void Train(ComputeDevice dev, Subject subject, AdaTrainOptions o, string modelPath, string outPath)
    {
        var total = Stopwatch.StartNew();
        var trainer = new AdaTrainer(subject.Model, subject.Conditioning, o);
        var info = trainer.Info;
        string boundaryText = info.LearnsBoundary ? $"boundary learned per sample among blocks {string.Join(",", info.Candidates!)}" : $"boundary block {info.Boundary}";
        Console.WriteLine($"ada policy: {info.Pixels} + {info.ConditionDim} ({(info.ReadsCaptions ? "caption summary" : "class one-hot")}) → {info.Hidden} ReLU → {info.Decisions}" +
                          $"{(info.LearnsBoundary ? $" + {info.BoundaryChoices}" : "")} ({trainer.Weights.ParameterCount:N0} parameters); steps {info.Steps}, rho {info.Rho} " +
                          $"(cache steps 0..{info.Rho - 1}), {boundaryText} of {subject.Model.Shape.Depth}" + (o.InitN is int n0 ? $"; step head starts at N = {n0}" : ""));
        Console.WriteLine($"training: {o.Samples} samples (seed {o.Seed}; {subject.Source}), batch {o.Batch}, {o.Epochs} epochs, Adam lr {o.LearningRate:G3}, " +
                          $"R = C + {o.Lambda:G3}·Q, Q = SSIM to the uncached sample; DDIM {o.Steps} steps, cfg {o.Cfg:0.##}");

        trainer.RecordTrajectories((done, all) => Console.WriteLine($"trajectories: {done}/{all} samples ({total.Elapsed.TotalSeconds:F0} s)"));
        Console.WriteLine($"trajectories: {o.Samples} samples × {o.Steps} steps uncached in {trainer.TrajectorySeconds:F1} s; " +
                          $"each epoch runs steps {info.Rho}..{info.Steps - 1} only");
        var epochs = Stopwatch.StartNew();
        var logs = trainer.Train(e =>
        {
            double eta = e.Seconds * (o.Epochs - e.Epoch);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"epoch {e.Epoch,3}/{o.Epochs}  R {e.Reward:F4}  C {e.C:F3}  Q {e.Q:F4}  mean m {e.MeanM:F3}  greedy reuse {e.GreedyReuse:F3}  {e.Seconds:F1} s  (ETA {eta:F0} s)"));
        });
        double epochSeconds = epochs.Elapsed.TotalSeconds;
        var greedySw = Stopwatch.StartNew();
        var (gc, gq) = trainer.EvaluateGreedy();
        double greedySeconds = greedySw.Elapsed.TotalSeconds;
        string cMeaning = info.LearnsBoundary ? "blocks skipped in steps ≥ rho, of the deepest boundary's" : "steps ≥ rho reused";
        string greedyBoundaries = info.LearnsBoundary ? $"; boundaries {trainer.GreedyBoundaries()}" : "";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"greedy policy on the training samples: C {gc:F3} ({cMeaning}), Q {gq:F4} (SSIM), R {gc + o.Lambda * gq:F4}; {greedySeconds:F1} s{greedyBoundaries}"));
        var (forwardMs, perSampleMs) = TimeForward(dev, trainer, o.Batch);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"decision network on the device: {forwardMs:F3} ms per forward of {o.Batch} samples ({perSampleMs:F4} ms per sample; once per sampling run), " +
            $"vs {trainer.LastEpisodeStepSeconds * 1e3:F1} ms per model step at the same batch"));

        double seconds = total.Elapsed.TotalSeconds;
        var last = logs[^1];
        var md = new Dictionary<string, string>
        {
            ["quality"] = "ssim_vs_uncached",
            ["train_model"] = Path.GetFileName(Path.TrimEndingDirectorySeparator(modelPath)),
            ["train_model_steps"] = ModelTrainSteps(modelPath) ?? "unknown",
            ["train_sampler"] = "DDIM eta 0, spacing even",
            ["train_cfg"] = o.Cfg.ToString("R", CultureInfo.InvariantCulture),
            ["train_samples"] = I(o.Samples), ["train_batch"] = I(o.Batch), ["train_epochs"] = I(o.Epochs),
            ["train_lr"] = o.LearningRate.ToString("R", CultureInfo.InvariantCulture),
            ["train_seed"] = o.Seed.ToString(CultureInfo.InvariantCulture), ["train_init_seed"] = I(o.InitSeed),
            ["train_seconds"] = seconds.ToString("F1", CultureInfo.InvariantCulture),
            ["train_last_epoch"] = string.Create(CultureInfo.InvariantCulture, $"R {last.Reward:F4} C {last.C:F4} Q {last.Q:F4}"),
            ["train_greedy"] = string.Create(CultureInfo.InvariantCulture, $"C {gc:F4} Q {gq:F4}"),
            ["forward_ms_per_sample"] = perSampleMs.ToString("G4", CultureInfo.InvariantCulture),
            ["parameters"] = trainer.Weights.ParameterCount.ToString(CultureInfo.InvariantCulture),
        };
        if (info.ReadsCaptions)
        {
            md["train_prompts"] = subject.Source;
            md["train_cfg_channels"] = o.CfgChannels == CfgChannels.All ? "all" : "official";
        }
        if (o.InitN is int initN) md["train_init_n"] = I(initN);
        if (info.LearnsBoundary) md["train_greedy_boundaries"] = trainer.GreedyBoundaries();
        trainer.Weights.Save(outPath, md);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"wrote {outPath}; training took {seconds:F0} s (trajectories {trainer.TrajectorySeconds:F0} s, {o.Epochs} epochs {epochSeconds:F0} s, greedy check {greedySeconds:F0} s) on {dev.Describe()}"));
    }

    static string I(int v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>Device forward of the network on `batch` recorded z_ρ: one warm-up, then the mean of 20 timed runs.</summary>
    static (double Ms, double PerSampleMs) TimeForward(ComputeDevice dev, AdaTrainer trainer, int batch)
    {
        var items = trainer.Items.Take(batch).ToList();
        var info = trainer.Info;
        using var net = new AdaDecisionNetwork(dev, trainer.Weights);
        using var x = Tensor.FromHost(dev, "ada.z", items.SelectMany(it => it.Z).ToArray(), items.Count, info.Pixels);
        using var captions = trainer.Captions(items) is { } c ? Tensor.FromHost(dev, "ada.captions", c, items.Count, info.CaptionWidth) : null;
        var labels = items.Select(it => it.Class).ToArray();
        net.Forward(x, labels, captions);
        const int runs = 20;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < runs; i++) net.Forward(x, labels, captions);
        double ms = sw.Elapsed.TotalMilliseconds / runs;
        return (ms, ms / items.Count);
    }

    /// <summary>The demo model's train_steps metadata (which export the policy was trained on), if the file has it.</summary>
    static string? ModelTrainSteps(string modelPath)
    {
        if (!File.Exists(modelPath) || TorchCheckpoint.LooksLikeTorch(modelPath)) return null;
        using var f = SafeTensorsFile.Open(modelPath);
        return f.Metadata.GetValueOrDefault("train_steps");
    }
}

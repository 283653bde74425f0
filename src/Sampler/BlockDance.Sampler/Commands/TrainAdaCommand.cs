// blockdance train-ada: learn BlockDance-Ada's per-sample reuse decisions with REINFORCE.
//
//   blockdance train-ada [--model FILE] [--device auto|cuda|cpu] [--out models/ada_policy.safetensors]
//                        [--steps 50] [--cfg 4] [--samples 32] [--batch 16] [--epochs 16] [--lr 3e-3]
//                        [--lambda 2] [--rho 0.4] [--hidden 128] [--cache-block b | --learn-boundary b,b,…] [--init-n N]
//                        [--seed 1000] [--init-seed 0] [--quick]
//
// Reward per sample (the paper's form): R(u) = C(u) + λ·Q(u), λ = 2.
//   C(u) = fraction of the s − ρ decided steps that reuse (1 − Σu_t/(s − ρ)): the compute saved.
//   Q(u) = SSIM (11×11 Gaussian window, as `blockdance eval`) of the final sample to the UNCACHED final
//          sample from the same noise, images mapped to [0, 1], clamped to [0, 1].
// Why SSIM to the uncached sample and not the paper's ImageReward or the digit classifier: caching is an
// approximation of the uncached sampler, so what it can damage is exactly the distance to the uncached
// result from the same noise; SSIM measures that per sample, is 1 when nothing is reused, falls smoothly
// as reuse distorts strokes, and needs no extra network. The classifier's probability of the intended
// class saturates near 1 for most digits (a reused step rarely changes the class), so it would hardly
// penalise damage and the policy would learn "reuse everything"; an aesthetic score like ImageReward
// does not exist for 14×14 digits. SSIM is also what `eval` reports, so training and evaluation agree.
//
// Cost: the uncached trajectories (samples × s steps) run once: they give z_ρ, the step-(ρ−1) features
// and the reference. Each epoch then runs only steps ρ..s−1 for every sample (see AdaTrainer).
// The training samples use seed 1000 (eval samples seed 0), class round-robin.
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

    public static int Run(string[] argv)
    {
        var a = Args.Parse("train-ada", argv);
        if (a.Positional.Count > 0) throw new UsageException($"train-ada: unexpected argument '{a.Positional[0]}'");
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
        var outPath = a.Get("out")!;
        if (!outPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            throw new UsageException($"--out {outPath}: expected a .safetensors file name");
        AtomicFile.CheckWritable(outPath, "--out");

        var modelPath = CommonOptions.ModelPath(a);
        // The trainer (AdaTrainer) runs a class-conditional DiT: its episodes start from recorded class-labelled
        // trajectories and its decision network reads (C, H, W) samples with their class. A caption model is refused here,
        // before the device starts, not halfway through loading.
        if (ModelRun.KindOf(modelPath) is var kind && kind != ModelKind.DiT)
            throw new UsageException($"train-ada: expected a class-conditional DiT checkpoint (the REINFORCE trainer's episodes and decision network " +
                                     $"take class labels and (C, H, W) samples), found the {Opt.KindName(kind)} model {modelPath}");
        using var src = (IDisposable)ModelLoader.OpenSource(modelPath);
        var weights = (IWeightSource)src;
        var cfg = CommonOptions.DetectConfig(a, weights);
        if (a.Has("cache-block"))
        {
            int b = a.GetInt("cache-block", orElse: 0);
            if (b < 0 || b > cfg.Depth - 2) throw new UsageException($"--cache-block: expected 0..{cfg.Depth - 2}, found {b}");
            o = o with { Boundary = b };
        }
        if (a.Has("learn-boundary"))
        {
            if (a.Has("cache-block")) throw new UsageException("--learn-boundary: learns the boundary, so --cache-block (a fixed one) does not apply");
            var bs = a.GetIntList("learn-boundary");
            if (bs.Count < 2 || bs.Zip(bs.Skip(1)).Any(p => p.First >= p.Second) || bs[0] < 0 || bs[^1] > cfg.Depth - 2)
                throw new UsageException($"--learn-boundary: expected at least two ascending blocks in 0..{cfg.Depth - 2}, found {string.Join(",", bs)}");
            o = o with { Boundaries = bs };
        }
        if (a.Has("init-n")) o = o with { InitN = a.GetInt("init-n", orElse: 1) };
        if (cfg.InputSize < Evaluation.ImageMetrics.SsimWindow)
            throw new UsageException($"train-ada: Q is SSIM with an {Evaluation.ImageMetrics.SsimWindow}×{Evaluation.ImageMetrics.SsimWindow} window; the model makes {cfg.InputSize}×{cfg.InputSize} samples");
        if (o.Batch > o.Samples) o = o with { Batch = o.Samples };

        using var dev = CommonOptions.Device(a);
        Console.WriteLine($"model: {modelPath}\n       {cfg}");
        using var pipe = DiTPipeline.Load(modelPath, dev, weights, cfg, vaePath: null);
        var model = pipe.Model;
        var total = Stopwatch.StartNew();
        var trainer = new AdaTrainer(model, o);
        var info = trainer.Info;
        string boundaryText = info.LearnsBoundary ? $"boundary learned per sample among blocks {string.Join(",", info.Candidates!)}" : $"boundary block {info.Boundary}";
        Console.WriteLine($"ada policy: {info.InputDim} → {info.Hidden} ReLU → {info.Decisions}{(info.LearnsBoundary ? $" + {info.BoundaryChoices}" : "")} " +
                          $"({trainer.Weights.ParameterCount:N0} parameters); steps {info.Steps}, rho {info.Rho} (cache steps 0..{info.Rho - 1}), {boundaryText} of {cfg.Depth}" +
                          (o.InitN is int n0 ? $"; step head starts at N = {n0}" : ""));
        Console.WriteLine($"training: {o.Samples} samples (seed {o.Seed}), batch {o.Batch}, {o.Epochs} epochs, Adam lr {o.LearningRate:G3}, " +
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
            ["train_model"] = Path.GetFileName(modelPath),
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
        if (o.InitN is int initN) md["train_init_n"] = I(initN);
        if (info.LearnsBoundary) md["train_greedy_boundaries"] = trainer.GreedyBoundaries();
        trainer.Weights.Save(outPath, md);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"wrote {outPath}; training took {seconds:F0} s (trajectories {trainer.TrajectorySeconds:F0} s, {o.Epochs} epochs {epochSeconds:F0} s, greedy check {greedySeconds:F0} s) on {dev.Describe()}"));
        return 0;
    }

    static string I(int v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>Device forward of the network on `batch` recorded z_ρ: one warm-up, then the mean of 20 timed runs.</summary>
    static (double Ms, double PerSampleMs) TimeForward(ComputeDevice dev, AdaTrainer trainer, int batch)
    {
        var items = trainer.Items.Take(batch).ToList();
        var info = trainer.Info;
        using var net = new AdaDecisionNetwork(dev, trainer.Weights);
        using var x = Tensor.FromHost(dev, "ada.z", items.SelectMany(it => it.Z).ToArray(), items.Count, info.Channels, info.Height, info.Width);
        var labels = items.Select(it => it.Class).ToArray();
        net.Forward(x, labels);
        const int runs = 20;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < runs; i++) net.Forward(x, labels);
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

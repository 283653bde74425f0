// Every option of the program, declared once (Opt.cs). A command lists the declarations it accepts
// (CommandTable); an option whose default or range differs by command is its own declaration (`with`).
// Fields: the words core code uses for the same value, so an error about it can carry the flag (FlagErrors).
using BlockDance.Kernels;
using BlockDance.Transformer.Tokenizers;
using SpacingKind = BlockDance.Sampling.Spacing;
using CfgChannelsKind = BlockDance.Sampling.CfgChannels;
using PrecisionKind = BlockDance.Kernels.Precision;

namespace BlockDance.Sampler.Cli;

public static class Opts
{
    static readonly ModelKind[] DiTOnly = [ModelKind.DiT], PixArtOnly = [ModelKind.PixArt], STDiTOnly = [ModelKind.STDiT],
        Captioned = [ModelKind.PixArt, ModelKind.STDiT], NotPixArt = [ModelKind.DiT, ModelKind.STDiT];

    // the model and the device
    public static readonly TextOpt Model = new("model", "FILE|DIR", "checkpoint: .safetensors, PyTorch .pt (released or train.py), diffusers folder, a PixArt-α folder, or an Open-Sora 1.0 STDiT (.pth, .safetensors, folder)")
        { DefaultText = CommonOptions.DefaultModel, Fields = ["model"] };
    public static readonly ChoiceOpt<DeviceKind> Device = new("device",
        "compute device: auto = the first CUDA GPU, else cpu; cpu = host kernels (ILGPU kernels where an op has none); sim = the ILGPU simulator",
        [("auto", DeviceKind.Auto), ("cuda", DeviceKind.Cuda), ("cpu", DeviceKind.Cpu), ("sim", DeviceKind.Sim)]) { Default = DeviceKind.Auto, Fields = ["device"] };
    public static readonly IntOpt Threads = new("threads", "N", "threads of the host kernels (--device cpu), {range}; results do not depend on it", 1, 4096)
        { DefaultText = "every core", Fields = ["threads"] };
    public static readonly IntOpt Heads = new("heads", "N", "attention heads when the file does not say, {range}", 1, 65536)
        { DefaultText = "metadata, else the S/B/L/XL preset", Models = NotPixArt, Fields = ["heads", "attention heads"] };
    public static readonly ChoiceOpt<PrecisionKind> Precision = new("precision", "operand precision of the model's GEMMs",
        [("fp32", PrecisionKind.Fp32), ("bf16", PrecisionKind.Bf16), ("fp16", PrecisionKind.Fp16)])
        { DefaultText = "bf16 on CUDA, else fp32", Fields = ["precision"] };

    // sampling
    public static readonly IntListOpt Class = new("class", "1,2,…", "class labels")
        { DefaultText = "one of each for ≤ 10 classes, else 8 reference labels", Models = DiTOnly, Fields = ["class", "class label"] };
    public static readonly IntOpt Seed = new("seed", "N", "noise seed, {range}", 0) { Default = 0, Fields = ["seed"] };
    public static readonly IntOpt Steps = new("steps", "N", "sampling steps, {range}", 1, Schedule.TrainSteps)
        { Default = 50, PixArtDefault = 20, STDiTDefault = 100, Fields = ["steps", "sampling steps"] };
    public static readonly ChoiceOpt<SamplerKind> Sampler = new("sampler", "sampler: DDIM, ancestral DDPM, or DPM-Solver++ 2M",
        [("ddim", SamplerKind.Ddim), ("ddpm", SamplerKind.Ddpm), ("dpm++2m", SamplerKind.DpmSolver2M)])
        { Default = SamplerKind.Ddim, PixArtDefault = SamplerKind.DpmSolver2M, STDiTDefault = SamplerKind.Ddpm, Fields = ["sampler"] };
    public static readonly ChoiceOpt<SpacingKind> Spacing = new("spacing", "timestep respacing: even = the 'K' rule, stride = 'ddimK', linspace = diffusers' (DPM-Solver++'s own, its default)",
        [("even", SpacingKind.Even), ("stride", SpacingKind.Stride), ("linspace", SpacingKind.Linspace)]) { Default = SpacingKind.Even, DefaultText = "even; linspace for dpm++2m", Fields = ["spacing"] };
    public static readonly DoubleOpt Eta = new("eta", "X", "DDIM η in {range} (DDIM only; refused with another sampler)", 0, 1) { Default = 0.0, Fields = ["eta", "DDIM eta"] };
    public static readonly DoubleOpt Cfg = new("cfg", "X", "classifier-free guidance scale in {range}; 1 = off", 1, 100)
        { Default = 4.0, PixArtDefault = 4.5, STDiTDefault = 7.0, Fields = ["guidance scale", "cfg"] };
    public static readonly ChoiceOpt<CfgChannelsKind> CfgChannels = new("cfg-channels", "guide the first 3 eps channels (official) or all",
        [("official", CfgChannelsKind.Official), ("all", CfgChannelsKind.All)])
        { Default = CfgChannelsKind.Official, Models = NotPixArt, Fields = ["cfg channels"] };
    public static readonly IntOpt Batch = new("batch", "N", "samples per model call, {range}", 1, 4096)
        { Default = 0, DefaultText = "all at once, smaller when memory says so", Models = DiTOnly, Fields = ["batch"] };

    // cache methods
    public static readonly TextOpt Cache = new("cache", "METHOD[:k=v…]", "cache method: " + CacheSpec.Names + "; options as NAME:key=value (docs/caching.md); blockdance = bd2 set by --cache-n/--cache-block/--cache-window")
        { Default = "none", Suggestions = CacheSpec.Methods.Select(m => m.Name == "bd" ? "bd2" : m.Name).Append("blockdance").ToArray(), Fields = ["cache", "cache method"] };
    public static readonly IntOpt CacheN = new("cache-n", "N", "with --cache blockdance: one cache step then N − 1 reuse steps, 1..steps")
        { Default = 2, Fields = ["BlockDance N"] };
    public static readonly IntOpt CacheBlock = new("cache-block", "b", "with --cache blockdance: reuse blocks 0..b")
        { DefaultText = "⌊0.75·depth⌋ − 1", Fields = ["BlockDance Boundary"] };
    public static readonly DoubleListOpt CacheWindow = new("cache-window", "s,e", "with --cache blockdance: fractions of the steps where reuse may happen, 0 ≤ s < e ≤ 1", 2)
        { Default = new List<double> { 0.25, 0.95 }, PixArtDefault = new List<double> { 0.40, 0.95 }, Fields = ["BlockDance Window"] };
    public static readonly TextOpt Policy = new("policy", "FILE", "with --cache ada: the BlockDance-Ada policy; with --cache l2c: the Learning-to-Cache router")
        { DefaultText = $"for ada {CommonOptions.DefaultAdaPolicy} (a DiT) or MODEL.ada_policy.safetensors beside a PixArt-α/STDiT model; for l2c {CacheSpec.DefaultRouter}", Fields = ["ada policy"] };

    // Open-Sora 1.0 (STDiT) video: VideoOptions reads them; defaults from the model's config.json, else the 1.0 rules
    public static readonly IntOpt Frames = new("frames", "N", "video frames (latent frames), {range}", 1, 1024) { DefaultText = "config.json, else 16", Models = STDiTOnly, Fields = ["frames"] };
    public static readonly IntOpt VideoSize = new("image-size", "PX", "video side in pixels (STDiT: 256 or 512 released; a multiple of 16), {range}", 16, 4096)
        { DefaultText = "config.json, else 512", Models = STDiTOnly, Fields = ["image size"] };
    public static readonly DoubleOpt SpaceScale = new("space-scale", "S", "STDiT spatial table scale, {range}", 1e-3, 1e3) { DefaultText = "0.5 at 256 px, 1.0 at 512 px", Models = STDiTOnly };
    public static readonly DoubleOpt TimeScale = new("time-scale", "S", "STDiT temporal table scale, {range}", 1e-3, 1e3) { DefaultText = "1.0", Models = STDiTOnly };
    public static readonly IntOpt Fps = new("fps", "N", "frame rate of a video output, {range}", 1, 120) { Default = 8, Models = STDiTOnly };
    public static readonly TextOpt StepNoise = new("step-noise", "FILE", "per-step noise of the ancestral sampler: tensor 'step_noise' (K, B, C, T, H, W)") { Models = STDiTOnly, Fields = ["step noise"] };

    // sample's inputs and outputs
    public static readonly TextOpt Out = new("out", "FILE", "output .png (grid) or .safetensors (raw samples)") { Default = "out.png" };
    public static readonly TextOpt Report = new("report", "FILE", "also write a JSON report of the run");
    public static readonly TextOpt Noise = new("noise", "FILE", "starting noise: a .safetensors with tensor 'noise' (N, C, H, W)") { Fields = ["noise"] };
    public static readonly TextOpt Vae = new("vae", "DIR|FILE", "VAE decoder for latent models") { DefaultText = "a vae/ folder next to the model", Fields = ["vae"] };
    public static readonly SwitchOpt ProfileSteps = new("profile-steps", "synchronize inside each step to time model and sampler separately (adds host waits)");
    public static readonly TextOpt PromptEmbeds = new("prompt-embeds", "FILE", "caption features: a safetensors with prompt_embeds (and masks), e.g. from `blockdance encode`")
        { Models = Captioned, Fields = ["prompt embeddings"] };
    public static readonly TextOpt Negative = new("negative", "FILE", "the unconditional caption features for guidance, when --prompt-embeds has none")
        { Models = PixArtOnly, Fields = ["negative prompt embeddings"] };
    public static readonly TextOpt Prompt = new("prompt", "TEXT", "the prompt, encoded by the folder's tokenizer and T5 (\"\" for the empty prompt); instead of --prompt-embeds; repeat it for several prompts, one sample each, in order")
        { Models = Captioned, Fields = ["prompt"], Repeatable = true };
    public static readonly TextOpt NegativePrompt = new("negative-prompt", "TEXT", "with --prompt: the negative prompt")
        { DefaultText = "\"\" under guidance", Models = PixArtOnly, Fields = ["negative prompt"] };
    public static readonly IntOpt MaxLength = new("max-length", "N", "with --prompt: tokens kept, EOS included, {range}", 1, 4096)
        { DefaultText = $"{T5Tokenizer.PixArtMaxLength} for PixArt-α, the model's model_max_length for STDiT", Models = Captioned, Fields = ["max length"] };
    public static readonly TextOpt Variant = new("variant", "NAME", "with --prompt: weight variant of the text encoder's shards, e.g. fp16")
        { DefaultText = "none", Models = Captioned };

    // sample --out-dir
    public static readonly TextOpt OutDir = new("out-dir", "DIR", "one PNG per sample, named by its global index, plus a manifest per shard");
    public static readonly IntOpt Count = new("count", "N", "N samples, classes in turn, {range}", 1);
    public static readonly IntOpt PerClass = new("per-class", "K", "K samples of each class, {range}", 1);
    public static readonly TextOpt ClassesFile = new("classes-file", "FILE", "the class of sample k on line k");
    public static readonly TextOpt Shard = new("shard", "i/n", "samples i, i+n, …; n must divide the count")
        { DefaultText = "Slurm/Kubernetes variables, else 0/1" };

    public static readonly TextOpt Npz = new("npz", "FILE", "write the ADM FID evaluator's batch: arr_0 uint8 (N, H, W, 3)");
    public static readonly TextOpt Fixtures = new("fixtures", "DIR", "the reference fixtures") { DefaultText = "tests/fixtures, searched upwards" };

    // analyze
    public static readonly TextOpt Csv = new("csv", "FILE", "per block and step pair: MSE and cosine") { Default = "stss.csv" };
    public static readonly TextOpt Png = new("png", "FILE", "heatmaps, written as .png and .svg") { Default = "stss.png" };
    public static readonly DoubleOpt Threshold = new("threshold", "X", "cosine counted as highly similar, {range}", -1, 1) { Default = 0.95 };
    public static readonly DoubleListOpt Window = new("window", "s,e", "the reuse window the summary judges", 2)
        { Default = new List<double> { 0.25, 0.95 }, PixArtDefault = new List<double> { 0.40, 0.95 } };

    // eval
    public static readonly TextOpt EvalCache = Cache with { Value = "none,bd2,…,ada", Help = "methods to compare (NAME[:key=value], as --cache of sample); none always runs first", Default = "none,bd2,bd3,bd4" };
    public static readonly IntOpt EvalPerClass = new("per-class", "K", "K samples of each class, {range}", 1, 100_000) { Default = 50, DefaultText = "50; --quick: 3" };
    public static readonly SwitchOpt Quick = new("quick", "a smoke-sized run");
    public static readonly SwitchOpt Sweep = new("sweep", "each method at every value of its main knob");
    public static readonly TextOpt Classifier = new("classifier", "FILE", "MNIST digit classifier for accuracy and FID") { DefaultText = "models/mnist_classifier.safetensors" };
    public static readonly TextOpt FidStats = new("fid-stats", "FILE", "reference feature statistics for FID") { DefaultText = "mnist_fid_stats.safetensors next to the classifier" };
    public static readonly TextOpt OutMd = new("out-md", "FILE", "also write the table as markdown");
    public static readonly TextOpt Plot = new("plot", "FILE", "quality against latency figure, written as .png and .svg");
    public static readonly TextOpt PlotFrom = new("plot-from", "FILE", "redraw --plot from a table written by --out-md, without sampling");
    public static readonly IntOpt Repeats = new("repeats", "R", "timed runs of every setting; the wall-clock is their median, {range}", 1, 100)
        { Default = 3, DefaultText = "3; --quick: 1" };
    public static readonly TextOpt BatchSweep = new("batch-sweep", "B,B,…", "also time the --batch-cache methods at each sampling batch (1,2,4,…,64): speedup and per-sample decisions per batch");
    public static readonly TextOpt BatchCache = Cache with { Name = "batch-cache", Value = "none,bd2,…", Help = "methods of --batch-sweep (none always runs first)", Default = "none,bd2,bd3,bd-adaptive:delta=0.2:order=1,ada" };

    // bench
    public static readonly TextOpt Preset = new("preset", "S/2|B/2|L/2|XL/2 …", "random weights of a preset instead of --model");
    public static readonly IntOpt ImageSize = new("image-size", "N", "with --preset: image size, {range}", 8, 4096) { Default = 256 };
    public static readonly IntOpt BenchBatch = new("batch", "N", "batch of the timed forward, {range}", 1, 1024) { Default = 0, DefaultText = "the class count when ≤ 10, else 8" };
    public static readonly IntOpt Iters = new("iters", "N", "timed forwards, {range}", 1, 10000) { Default = 20 };
    public static readonly IntOpt Warmup = new("warmup", "N", "untimed forwards first, {range}", 0, 100) { Default = 2 };
    public static readonly IntOpt BenchSteps = Steps with { Max = 1000 };
    public static readonly TextOpt BenchBatchCache = BatchCache with { Default = "none,bd2,bd3,bd-adaptive:delta=0.2:order=1,teacache" };
    public static readonly SwitchOpt NoSampling = new("no-sampling", "skip the sampling speedup part");

    // calibrate
    public static readonly IntOpt CalibrateSamples = new("samples", "N", "calibration samples, {range}", 1, 100_000) { Default = 10 };
    public static readonly IntOpt CalibrateSteps = Steps with { Min = 3 };
    public static readonly DoubleOpt TargetSkip = new("target-skip", "X", "fraction of steps the fitted thresholds aim to skip, {range}", 0, 1) { Default = 0.5 };
    public static readonly IntOpt CalibrateSeed = Seed with { Default = 2000 };
    public static readonly TextOpt CalibrateOut = new("out", "FILE", "where the calibration goes (.json)") { DefaultText = "MODEL.cache-calibration.json" };

    // train-ada
    public static readonly TextOpt AdaOut = new("out", "FILE", "where the learned policy goes")
        { DefaultText = $"{CommonOptions.DefaultAdaPolicy} for a DiT; MODEL.ada_policy.safetensors beside a PixArt-α or STDiT model (where --cache ada looks)" };
    public static readonly IntOpt AdaSteps = Steps with { Min = 2 };
    public static readonly IntOpt Samples = new("samples", "N", "training samples, {range}", 2, 100_000) { DefaultText = "32; --quick: 16" };
    public static readonly IntOpt AdaBatch = new("batch", "N", "samples per REINFORCE batch, {range}", 2, 4096) { Default = 16 };
    public static readonly IntOpt Epochs = new("epochs", "N", "epochs, {range}", 1, 100_000) { DefaultText = "16; --quick: 3" };
    public static readonly DoubleOpt Lr = new("lr", "X", "Adam learning rate in {range}", 1e-8, 1) { Default = 3e-3 };
    public static readonly DoubleOpt Lambda = new("lambda", "X", "weight of quality in the reward, {range}", 0, 1000) { Default = 2.0 };
    public static readonly DoubleOpt Rho = new("rho", "X", "fraction of steps that always cache, strictly inside (0, 1)", 0, 1) { Default = BlockDance.Cache.AdaPolicyInfo.DefaultRhoFraction };
    public static readonly IntOpt Hidden = new("hidden", "N", "hidden units of the decision MLP, {range}", 1, 65536) { Default = 128 };
    public static readonly IntOpt AdaSeed = new("seed", "N", "seed of the training samples' noise, {range}", 0) { Default = 1000 };
    public static readonly IntOpt InitSeed = new("init-seed", "N", "seed of the network's initial weights, {range}", 0) { Default = 0 };
    public static readonly IntOpt AdaCacheBlock = CacheBlock with { Help = "reuse blocks 0..b (0..depth − 2)" };
    public static readonly TextOpt AdaPrompt = Prompt with
        { Help = "a training prompt (PixArt-α, STDiT), encoded by the folder's tokenizer and T5; instead of --prompt-embeds; repeat it for several: the training samples take them in turn" };
    public static readonly TextOpt AdaPromptEmbeds = PromptEmbeds with
        { Help = "the training captions' features (PixArt-α, STDiT): a safetensors with prompt_embeds (and masks); the training samples take its rows in turn" };
    public static readonly IntListOpt LearnBoundary = new("learn-boundary", "b,b,…",
        "learn the boundary per sample too: a head picks one of these blocks (≥ 2 ascending, 0..depth − 2) at step ρ; the reward's C weighs a reused step by (b + 1)/(deepest + 1); instead of --cache-block")
        { DefaultText = "off: the fixed --cache-block" };
    public static readonly IntOpt InitN = new("init-n", "N", "start the step head at BlockDance-N's pattern (every N-th decided step caches, the others reuse; bias ±2), {range}", 1, 1000)
        { DefaultText = "off: m ≈ 0.5 everywhere" };

    // encode
    public static readonly TextOpt EncodeModel = new("model", "DIR", "a PixArt folder with text_encoder/ and tokenizer/ (required)");
    public static readonly TextOpt EncodePrompt = Prompt with { Help = "the prompt (required; \"\" for the empty prompt)", Models = null };
    public static readonly TextOpt EncodeNegative = NegativePrompt with { Help = "the negative prompt", DefaultText = "none", Models = null };
    public static readonly IntOpt EncodeMaxLength = MaxLength with { Models = null, Default = T5Tokenizer.PixArtMaxLength, DefaultText = null };
    public static readonly TextOpt EncodeVariant = Variant with { Help = "weight variant of the shards, e.g. fp16", Models = null };
    public static readonly TextOpt EncodeOut = new("out", "FILE", "the embeddings, .safetensors") { Default = "embeds.safetensors" };
    public static readonly ChoiceOpt<PrecisionKind> SelftestPrecision = Precision with { DefaultText = "fp32 (the fixtures are fp32)" };

    // ptx and kernels
    public static readonly TextOpt PtxOut = new("out", "DIR", "write each kernel's .ptx (and the .cubin files) there") { Default = "ptx" };
    public static readonly TextOpt Ptxas = new("ptxas", "PATH", "NVIDIA's ptxas; without it only PTX is generated") { DefaultText = "$PTXAS, then tools/get-ptxas.sh's cache" };
    public static readonly TextOpt Kernel = new("kernel", "NAME", "only the kernels whose name contains NAME");
    public static readonly TextOpt Op = new("op", "NAME", "gemm, attention, layernorm, rmsnorm, …") { DefaultText = "every op", Fields = ["op"] };
    public static readonly TextOpt Version = new("version", "V,…|all", "versions to validate and time, e.g. v2,v3-bf16") { Default = "all", Fields = ["version"] };
    public static readonly TextOpt Shapes = new("shapes", "small|demo|xl", "small (CPU-sized), the demo model's (model batch 20) or the DiT-XL/2 shapes")
        { DefaultText = "small on the CPU, xl on CUDA", Suggestions = ["small", "demo", "xl"], Fields = ["shapes"] };
    public static readonly IntOpt KernelIters = new("iters", "N", "timed runs per version, {range}", 1, 100000) { DefaultText = "50 on CUDA, 3 on the CPU" };
    public static readonly IntOpt CpuWarps = new("cpu-warps", "N", "warps per group of the CPU accelerator, {range}; 1 skips the tiled versions", 1, 8) { Default = 8 };

    public static readonly SwitchOpt[] Global =
        [new("verbose", "print the stack trace of an error"), new("quiet", "no progress bar")];
}

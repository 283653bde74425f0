// What `blockdance <command> --help` prints: the command's line, then every option the command declares
// (the same list Args.Parse enforces, so help cannot drift from what is accepted) with its value, default
// and range. Descriptions are looked up as "command.option" first (a default that differs by command),
// then "option". An option without an entry is still listed, so a new option is never hidden.
namespace BlockDance.Sampler.Cli;

public static class OptionHelp
{
    static readonly Dictionary<string, string> Commands = new()
    {
        ["sample"] = "draw samples from a DiT checkpoint (.safetensors, .pt or a diffusers folder) and write a PNG grid or raw tensors;\n" +
                     "  with --out-dir: one PNG per sample, sharded over processes (docs/scale-out.md; `sample --out-dir D --help`)",
        ["inspect"] = "print a checkpoint's tensors and the detected DiT config: blockdance inspect FILE",
        ["selftest"] = "compare the engine with the committed PyTorch reference fixtures on a device, one line per check",
        ["analyze"] = "STSS analysis: similarity of each block's output across adjacent steps (CSV + heatmaps)",
        ["eval"] = "speed and quality of cache policies against the uncached samples, one run",
        ["bench"] = "latency per forward, per-kernel time and sampling speedups",
        ["train-ada"] = "learn BlockDance-Ada's per-sample reuse decisions (REINFORCE)",
        ["encode"] = "T5 prompt embeddings for PixArt: blockdance encode --model DIR --prompt TEXT --out embeds.safetensors",
        ["merge"] = "gather the shards of `sample --out-dir DIR`: blockdance merge DIR [--npz out.npz]",
        ["ptx"] = "static GPU check without a GPU: every kernel's PTX (sm_80, ISA 7.8), ptxas for sm_80/sm_90, registers, spills, SASS claims",
        ["kernels"] = "the kernel harness: validate each version of an op against its reference, then time it (median µs, TFLOP/s, vs cuBLAS on CUDA)",
    };

    static readonly Dictionary<string, (string Value, string Text)> Options = new()
    {
        ["model"] = ("FILE|DIR", "checkpoint: .safetensors, PyTorch .pt (released or train.py), or diffusers folder (default models/dit_mnist.safetensors)"),
        ["device"] = ("auto|cuda|cpu", "compute device (default auto: the first CUDA GPU, else ILGPU's CPU accelerator)"),
        ["threads"] = ("N", "threads of the host kernels on --device cpu, ≥ 1 (default all cores; the output does not depend on it)"),
        ["heads"] = ("N", "attention heads when the file does not say (1..65536; default: metadata, else the S/B/L/XL preset)"),
        ["class"] = ("1,2,…", "class labels (default one of each for ≤ 10 classes, else 8 reference labels)"),
        ["seed"] = ("N", "noise seed, ≥ 0 (default 0)"),
        ["train-ada.seed"] = ("N", "seed of the training samples' noise, ≥ 0 (default 1000)"),
        ["steps"] = ("N", "sampling steps, 1..1000 (default 50)"),
        ["sampler"] = ("ddim|ddpm", "sampler (default ddim)"),
        ["spacing"] = ("even|stride", "timestep respacing: even = the 'K' rule, stride = 'ddimK' (default even)"),
        ["eta"] = ("X", "DDIM η in [0, 1] (default 0)"),
        ["cfg"] = ("X", "classifier-free guidance scale in [1, 100]; 1 = off (default 4)"),
        ["cfg-channels"] = ("official|all", "guide the first 3 eps channels (official) or all (default official)"),
        ["batch"] = ("N", "samples per model call, 1..4096 (default all at once, smaller when memory says so)"),
        ["bench.batch"] = ("N", "batch of the timed forward, 1..1024 (default 8)"),
        ["train-ada.batch"] = ("N", "samples per REINFORCE batch, 2..4096 (default 16)"),
        ["cache"] = ("none|blockdance|ada", "cache policy (default none)"),
        ["eval.cache"] = ("none,bd2,…,ada", "policies to compare; none always runs first (default none,bd2,bd3,bd4)"),
        ["cache-n"] = ("N", "BlockDance: one cache step then N − 1 reuse steps, 1..steps (default 2)"),
        ["cache-block"] = ("b", "reuse blocks 0..b (default ⌊0.75·depth⌋ − 1)"),
        ["cache-window"] = ("s,e", "fractions of the steps where reuse may happen, 0 ≤ s < e ≤ 1 (default 0.25,0.95)"),
        ["policy"] = ("FILE", "BlockDance-Ada policy (default models/ada_policy.safetensors)"),
        ["out"] = ("FILE", "output .png (grid) or .safetensors (raw samples) (default out.png)"),
        ["train-ada.out"] = ("FILE", "where the learned policy goes (default models/ada_policy.safetensors)"),
        ["report"] = ("FILE", "also write a JSON report of the run"),
        ["noise"] = ("FILE", "starting noise: a .safetensors with tensor 'noise' (N, C, H, W)"),
        ["vae"] = ("DIR|FILE", "VAE decoder for latent models (default a vae/ folder next to the model)"),
        ["out-dir"] = ("DIR", "one PNG per sample, named by its global index, plus a manifest per shard"),
        ["count"] = ("N", "--out-dir: N samples, classes in turn"),
        ["per-class"] = ("K", "K samples of each class (eval default 50; --quick: 3)"),
        ["classes-file"] = ("FILE", "--out-dir: the class of sample k on line k"),
        ["shard"] = ("i/n", "--out-dir: samples i, i+n, …; n must divide the count (default Slurm/Kubernetes variables, else 0/1)"),
        ["npz"] = ("FILE", "write the ADM FID evaluator's batch: arr_0 uint8 (N, H, W, 3)"),
        ["csv"] = ("FILE", "per block and step pair: MSE and cosine (default stss.csv)"),
        ["png"] = ("FILE", "heatmaps, written as .png and .svg (default stss.png)"),
        ["threshold"] = ("X", "cosine counted as highly similar, [−1, 1] (default 0.95)"),
        ["window"] = ("s,e", "the reuse window the summary judges (default 0.25,0.95)"),
        ["quick"] = ("", "a smoke-sized run"),
        ["classifier"] = ("FILE", "MNIST digit classifier for accuracy and FID (default models/mnist_classifier.safetensors)"),
        ["fid-stats"] = ("FILE", "reference feature statistics for FID (default mnist_fid_stats.safetensors next to the classifier)"),
        ["out-md"] = ("FILE", "also write the table as markdown"),
        ["plot"] = ("FILE", "quality against latency figure, written as .png and .svg"),
        ["plot-from"] = ("FILE", "redraw --plot from a table written by --out-md, without sampling"),
        ["fixtures"] = ("DIR", "the reference fixtures (default tests/fixtures, searched upwards)"),
        ["preset"] = ("S/2|B/2|L/2|XL/2 …", "random weights of a preset instead of --model"),
        ["image-size"] = ("N", "with --preset: image size, 8..4096 (default 256)"),
        ["iters"] = ("N", "timed forwards, 1..10000 (default 20)"),
        ["warmup"] = ("N", "untimed forwards first, 0..100 (default 2)"),
        ["no-sampling"] = ("", "skip the sampling speedup part"),
        ["samples"] = ("N", "training samples, 2..100000 (default 32; --quick 16)"),
        ["epochs"] = ("N", "epochs, ≥ 1 (default 16; --quick 3)"),
        ["lr"] = ("X", "Adam learning rate in [1e-8, 1] (default 3e-3)"),
        ["lambda"] = ("X", "weight of quality in the reward, [0, 1000] (default 2)"),
        ["rho"] = ("X", "fraction of steps that always cache, strictly inside (0, 1) (default 0.4)"),
        ["hidden"] = ("N", "hidden units of the decision MLP (default 128)"),
        ["encode.model"] = ("DIR", "a PixArt folder with text_encoder/ and tokenizer/ (required)"),
        ["encode.out"] = ("FILE", "the embeddings, .safetensors (default embeds.safetensors)"),
        ["prompt"] = ("TEXT", "the prompt (required; \"\" for the empty prompt)"),
        ["negative-prompt"] = ("TEXT", "the negative prompt (default none)"),
        ["max-length"] = ("N", "tokens kept, EOS included, 1..4096 (default 120, PixArt's)"),
        ["variant"] = ("NAME", "weight variant of the shards, e.g. fp16 (default none)"),
        ["profile-steps"] = ("", "synchronize inside each step to time model and sampler separately (adds host waits)"),
        ["init-seed"] = ("N", "seed of the network's initial weights (default 0)"),
        ["ptx.out"] = ("DIR", "write each kernel's .ptx (and the .cubin files) there"),
        ["ptxas"] = ("PATH", "NVIDIA's ptxas (default: $PTXAS, then tools/get-ptxas.sh's cache); without it only PTX is generated"),
        ["kernel"] = ("NAME", "only the kernels whose name contains NAME"),
        ["op"] = ("NAME", "gemm, attention, layernorm, rmsnorm, … (default: every op)"),
        ["version"] = ("V,…|all", "versions to validate and time, e.g. v2,v3-bf16 (default all)"),
        ["shapes"] = ("small|xl", "small (CPU-sized) or the DiT-XL/2 shapes (default small on the CPU, xl on CUDA)"),
        ["cpu-warps"] = ("N", "warps per group of the CPU accelerator, 1..8 (default 8; 1 skips the tiled versions)"),
    };

    public static string For(string command, IEnumerable<string> withValue, IEnumerable<string> switches, int positional)
    {
        var sb = new System.Text.StringBuilder();
        sb.Append($"usage: blockdance {command}{(positional > 0 ? " ARG" : "")} [options]\n");
        if (Commands.TryGetValue(command, out var what)) sb.Append($"  {what}\n");
        sb.Append("options:\n");
        foreach (var name in withValue.Concat(switches).Distinct())
        {
            var (value, text) = Options.GetValueOrDefault($"{command}.{name}", Options.GetValueOrDefault(name, ("VALUE", "")));
            var left = $"  --{name}{(value.Length > 0 ? " " + value : "")}";
            sb.Append(left.PadRight(34)).Append(' ').Append(text).Append('\n');
        }
        sb.Append("  --help".PadRight(34)).Append(" this text\n");
        sb.Append("global: --verbose (stack trace of an error), --quiet (no progress bar)\n");
        sb.Append("exit codes: 0 ok, 1 a selftest check failed, 2 bad input (one line), 70 internal error, 130/143 SIGINT/SIGTERM");
        return sb.ToString();
    }

    /// <summary>The declared option nearest to a mistyped one (edit distance ≤ 2), for "did you mean".</summary>
    public static string? Suggest(string typed, IEnumerable<string> known) =>
        known.Select(k => (k, d: Distance(typed, k))).Where(x => x.d <= Math.Max(1, Math.Min(2, typed.Length / 3)))
             .OrderBy(x => x.d).Select(x => x.k).FirstOrDefault();

    static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
            {
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);  // swap
            }
        return d[a.Length, b.Length];
    }
}

/// <summary>`--help` was given: the help text is printed by Program, exit 0.</summary>
public sealed class HelpRequested(string text) : Exception(text);

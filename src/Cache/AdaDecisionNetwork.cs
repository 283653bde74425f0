// BlockDance-Ada's decision network f_d (Zhang et al., CVPR 2025, §BlockDance-Ada), sized for the engine's models. Its input
// v is the sample at step ρ with what the sample is conditioned on:
//
//   class-conditional DiT:     v = [ z_ρ flattened (C·H·W) , onehot(y) (classes) ]       (B, P + K_cls)   OneHotConcat
//   caption model (PixArt-α,   v = [ z_ρ flattened (C·H·W, or C·F·H·W for video) , c ]   (B, P + D_text)  RowConcat
//   STDiT):                    c = Σ_l mask_l·e_l / Σ_l mask_l, the mean of the sample's caption features e (L, D_text)
//                              under its attention mask (the conditional caption; CaptionSet.MaskedMean, StepContext.Captions)
//   h = ReLU(fc1 v)                                         (B, hidden)      Gemm, Relu epilogue
//   m = sigmoid(fc2 h)                                      (B, s − ρ)       Gemm; sigmoid on the host
//   q = softmax(fc3 h)                                      (B, K_b)         Gemm; learned-boundary files only
//
// z_ρ is the sample x at step ρ (the first step after the ρ = 40% cache steps), y the class label.
// m_t is the probability that step ρ + t is a cache step (u_t = 1); inference thresholds it
// (m ≥ 0.5 ⇔ logit ≥ 0, so the sigmoid never has to run on the device). The paper uses 3 transformer
// blocks + an MLP (0.08B parameters) on text embeddings; for a 14×14 digit model an MLP is enough:
// 196 + 10 → 128 → 30 is 30,366 parameters. For a caption model the caption summary c stands where the paper's text
// embeddings enter (pooled, D_text wide, not projected: the first layer learns the projection): 196 + 64 → 128 → 12 for
// the 14×14 text-to-image demo at 20 steps.
//
// Two kinds. A fixed-boundary network (format "blockdance-ada-v1") has fc1 and fc2 only: every sample reuses
// blocks 0..boundary. A learned-boundary network (format "blockdance-ada-boundary-v1") adds the boundary head
// fc3: q_k is the probability that the sample's boundary is candidate k of `boundaries` (ascending block
// indices); inference takes the argmax (the first on a tie), the trainer samples k ~ q. The boundary is
// chosen once per sample, at step ρ, for all its remaining steps.
//
// File: safetensors with fc1.weight [hidden, P + K_cls] (caption kind: [hidden, P + D_text]), fc1.bias, fc2.weight
// [s − ρ, hidden], fc2.bias (PyTorch Linear layout, F32), for the learned kind also fc3.weight [K_b, hidden], fc3.bias, and
// __metadata__ format, steps, rho, input_shape "C,H,W" (a video model's "C,F,H,W"), classes (class kind) or
// condition "caption" + caption_width D_text (caption kind; a file without `condition` is the class kind, so every file
// written before caption models existed reads as it did), hidden, boundary (fixed kind: the block; learned kind: the
// deepest candidate), boundaries "b,b,…" (learned kind only), lambda, quality, plus train_* entries written by
// `blockdance train-ada` (read and written by the sampling library's AdaWeightsFile). AdaWeights holds the host
// copy (training, reference); AdaDecisionNetwork runs the forward on the device. A policy runs only on a model of its
// kind and sizes: AdaPolicyInfo.CheckRun (no device) names what it was trained for and what the model is.
using System.Globalization;
using BlockDance.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Cache;

/// <summary>What a decision network was trained for. Rho = number of leading cache steps (ρ); the network
/// decides the remaining Steps − Rho steps. Boundary = the block b whose output is reused (learned kind: the
/// deepest candidate). Candidates = the boundary head's blocks, ascending; null for a fixed-boundary network.
/// Frames = 0 for image samples (C, H, W), F for video samples (C, F, H, W). CaptionWidth = 0 for a class-conditioned
/// network (Classes = the model's labels), D_text for a caption-conditioned one (Classes = 0).</summary>
public sealed record AdaPolicyInfo(int Steps, int Rho, int Channels, int Height, int Width, int Classes, int Hidden,
    int Boundary, double Lambda, IReadOnlyList<int>? Candidates = null, int Frames = 0, int CaptionWidth = 0)
{
    public const string Format = "blockdance-ada-v1";
    public const string BoundaryFormat = "blockdance-ada-boundary-v1";
    public const string CaptionCondition = "caption";
    public const double DefaultRhoFraction = 0.4;

    /// <summary>A learned-boundary policy over the given candidate blocks (ascending, distinct); Boundary = the deepest.</summary>
    public static AdaPolicyInfo Learned(int steps, int rho, int channels, int height, int width, int classes, int hidden,
        IReadOnlyList<int> candidates, double lambda, int frames = 0, int captionWidth = 0)
    {
        if (candidates.Count < 2 || candidates.Zip(candidates.Skip(1)).Any(p => p.First >= p.Second) || candidates[0] < 0)
            throw new ArgumentException($"ada: expected at least two ascending distinct boundary candidates, found {string.Join(",", candidates)}");
        return new AdaPolicyInfo(steps, rho, channels, height, width, classes, hidden, candidates[^1], lambda, candidates.ToArray(), frames, captionWidth);
    }

    public bool LearnsBoundary => Candidates != null;
    /// <summary>Outputs of the boundary head (0 for a fixed-boundary network).</summary>
    public int BoundaryChoices => Candidates?.Count ?? 0;
    public string Kind => LearnsBoundary ? BoundaryFormat : Format;
    /// <summary>The network reads a caption summary (D_text = CaptionWidth) instead of a class one-hot.</summary>
    public bool ReadsCaptions => CaptionWidth > 0;

    public int Decisions => Steps - Rho;
    public int Pixels => Channels * Math.Max(1, Frames) * Height * Width;
    /// <summary>The conditioning part of v: K_cls one-hot values, or D_text caption values.</summary>
    public int ConditionDim => ReadsCaptions ? CaptionWidth : Classes;
    public int InputDim => Pixels + ConditionDim;
    /// <summary>"C×H×W", or "C×F×H×W" for video samples.</summary>
    public string SampleText => Frames == 0 ? $"{Channels}×{Height}×{Width}" : $"{Channels}×{Frames}×{Height}×{Width}";
    /// <summary>What the network is conditioned on, as messages say it.</summary>
    public string ConditionText => ReadsCaptions ? $"captions of width {CaptionWidth}" : $"{Classes} classes";

    /// <summary>ρ = round(0.4·s), at least 1 and at most s − 1 (so there is at least one decision).</summary>
    public static int DefaultRho(int steps, double fraction = DefaultRhoFraction) =>
        Math.Clamp((int)Math.Round(fraction * steps, MidpointRounding.AwayFromZero), 1, Math.Max(1, steps - 1));

    /// <summary>Checks that the model and the run match what the policy was trained for (CacheException otherwise).</summary>
    public void CheckRun(BlockStack cfg, int steps, string what = "ada policy")
    {
        // what the model is first (its conditioning, image or video, sizes), then the run
        string modelCondition = cfg.CaptionChannels > 0 ? $"captions of width {cfg.CaptionChannels}" : $"{cfg.Classes} classes";
        if (ReadsCaptions != cfg.CaptionChannels > 0)
            throw new CacheException($"{what}: a {(ReadsCaptions ? "caption" : "class")}-conditioned policy ({ConditionText}), the model is conditioned on {modelCondition}; " +
                                     "train one for this model with 'blockdance train-ada'");
        string model = cfg.Frames == 0 ? $"{cfg.Channels}×{cfg.Size}×{cfg.Size}" : $"{cfg.Channels}×{cfg.Frames}×{cfg.Size}×{cfg.Size}";
        if (cfg.Frames != Frames)
            throw new CacheException($"{what}: reads {(Frames == 0 ? "image" : "video")} samples of {SampleText}, the model makes {(cfg.Frames == 0 ? "image" : "video")} samples of {model}");
        if (cfg.Channels != Channels || cfg.Size != Height || cfg.Size != Width)
            throw new CacheException($"{what}: reads samples of {SampleText}, the model makes {model}");
        if (ReadsCaptions ? cfg.CaptionChannels != CaptionWidth : cfg.Classes != Classes)
            throw new CacheException($"{what}: trained for {ConditionText}, the model has {modelCondition}");
        if (steps != Steps)
            throw new CacheException($"{what}: trained for {Steps} sampling steps (ρ = {Rho}), the run has {steps}; sample with {Steps} steps or train a policy for {steps} steps");
        if (Boundary < 0 || Boundary >= cfg.Depth - 1 || (Candidates?.Any(b => b < 0) ?? false))
            throw new CacheException($"{what}: boundary block{(LearnsBoundary ? "s " + string.Join(",", Candidates!) : " " + Boundary)} " +
                                     $"do{(LearnsBoundary ? "" : "es")} not fit a {cfg.Depth}-block model (expected 0..{cfg.Depth - 2})");
    }

    public Dictionary<string, string> ToMetadata()
    {
        var md = FixedMetadata();
        if (ReadsCaptions)   // a class policy's entries stay exactly those written before caption policies existed
        {
            md.Remove("classes");
            md["condition"] = CaptionCondition;
            md["caption_width"] = I(CaptionWidth);
            md["decision"] = md["decision"].Replace("onehot(y)", "masked mean of the caption features");
        }
        if (Frames != 0) md["input_shape"] = $"{Channels},{Frames},{Height},{Width}";
        if (!LearnsBoundary) return md;
        md["format"] = BoundaryFormat;
        md["boundaries"] = string.Join(",", Candidates!.Select(I));
        md["decision"] += "; boundary = boundaries[argmax fc3(relu(fc1(...)))] per sample (first on a tie), blocks 0..boundary reused";
        return md;
    }

    Dictionary<string, string> FixedMetadata() => new()
    {
        ["format"] = Format,
        ["steps"] = I(Steps), ["rho"] = I(Rho), ["input_shape"] = $"{Channels},{Height},{Width}",
        ["classes"] = I(Classes), ["hidden"] = I(Hidden), ["boundary"] = I(Boundary),
        ["lambda"] = Lambda.ToString("R", CultureInfo.InvariantCulture),
        ["decision"] = "u_t = 1 cache step, 0 reuse step; m = sigmoid(fc2(relu(fc1([z_rho flat, onehot(y)])))); inference: m >= 0.5",
    };

    static string I(int v) => v.ToString(CultureInfo.InvariantCulture);
}

/// <summary>Host copy of the decision network's parameters (PyTorch Linear layout, [out, in]).</summary>
public sealed class AdaWeights
{
    public AdaPolicyInfo Info { get; }
    public float[] Fc1W { get; }   // (hidden, P + K_cls)
    public float[] Fc1B { get; }   // (hidden)
    public float[] Fc2W { get; }   // (s − ρ, hidden)
    public float[] Fc2B { get; }   // (s − ρ)
    public float[]? Fc3W { get; }  // (K_b, hidden), learned-boundary networks only
    public float[]? Fc3B { get; }  // (K_b)
    /// <summary>The file's __metadata__ (training settings and results), empty for fresh weights.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    public AdaWeights(AdaPolicyInfo info, float[] fc1W, float[] fc1B, float[] fc2W, float[] fc2B,
        IReadOnlyDictionary<string, string>? metadata = null, float[]? fc3W = null, float[]? fc3B = null)
    {
        int h = info.Hidden, k = info.Decisions, d = info.InputDim, kb = info.BoundaryChoices;
        if (k < 1) throw new ArgumentException($"ada policy: expected at least one decision step (steps {info.Steps}, rho {info.Rho})");
        if (info.CaptionWidth < 0 || info.ReadsCaptions && info.Classes != 0)
            throw new ArgumentException($"ada policy: expected a class one-hot or a caption summary as the condition, found {info.Classes} classes and caption width {info.CaptionWidth}");
        if (fc1W.Length != h * d || fc1B.Length != h || fc2W.Length != k * h || fc2B.Length != k)
            throw new ArgumentException($"ada weights: expected fc1 [{h}, {d}] + [{h}], fc2 [{k}, {h}] + [{k}], found {fc1W.Length}, {fc1B.Length}, {fc2W.Length}, {fc2B.Length} values");
        if ((fc3W?.Length ?? 0) != kb * h || (fc3B?.Length ?? 0) != kb)
            throw new ArgumentException($"ada weights: expected a boundary head fc3 [{kb}, {h}] + [{kb}], found {fc3W?.Length ?? 0}, {fc3B?.Length ?? 0} values");
        (Info, Fc1W, Fc1B, Fc2W, Fc2B, Fc3W, Fc3B) = (info, fc1W, fc1B, fc2W, fc2B, fc3W, fc3B);
        Metadata = metadata ?? new Dictionary<string, string>();
    }

    public long ParameterCount => Fc1W.Length + Fc1B.Length + Fc2W.Length + Fc2B.Length + (Fc3W?.Length ?? 0) + (Fc3B?.Length ?? 0);

    /// <summary>PyTorch's default Linear init, U(−1/√in, 1/√in) for weights and biases, except fc2's and fc3's biases = 0
    /// (every step starts at m = sigmoid(small) ≈ 0.5 and every boundary at q ≈ 1/K_b: maximal exploration).
    /// fc3 is drawn after fc1 and fc2, so a fixed-boundary network is the same as before the boundary head existed.</summary>
    public static AdaWeights Init(AdaPolicyInfo info, int seed)
    {
        var rng = new Random(seed);
        float[] U(int n, int fanIn)
        {
            var a = new float[n];
            double bound = 1 / Math.Sqrt(fanIn);
            for (int i = 0; i < n; i++) a[i] = (float)((rng.NextDouble() * 2 - 1) * bound);
            return a;
        }
        int h = info.Hidden, k = info.Decisions, d = info.InputDim, kb = info.BoundaryChoices;
        var (fc1W, fc1B, fc2W) = (U(h * d, d), U(h, d), U(k * h, h));
        return info.LearnsBoundary
            ? new AdaWeights(info, fc1W, fc1B, fc2W, new float[k], fc3W: U(kb * h, h), fc3B: new float[kb])
            : new AdaWeights(info, fc1W, fc1B, fc2W, new float[k]);
    }

    /// <summary>v = [x_i flattened, onehot(label)] for sample i of a batch (N, C, H, W) on the host.</summary>
    public float[] Input(float[] samples, int i, int label)
    {
        int p = Info.Pixels;
        var v = new float[Info.InputDim];
        Array.Copy(samples, (long)i * p, v, 0, p);
        v[p + label] = 1f;
        return v;
    }

    /// <summary>v = [x_i flattened, c_i] for sample i of a batch (N, C, [F,] H, W) and its caption summary c_i
    /// (row i of captions (N, D_text)) on the host: a caption-conditioned network's input.</summary>
    public float[] Input(float[] samples, int i, float[] captions)
    {
        int p = Info.Pixels, q = Info.CaptionWidth;
        if (!Info.ReadsCaptions) throw new ArgumentException($"ada network: a class-conditioned network ({Info.Classes} classes) reads labels, not captions");
        var v = new float[Info.InputDim];
        Array.Copy(samples, (long)i * p, v, 0, p);
        Array.Copy(captions, (long)i * q, v, p, q);
        return v;
    }

    /// <summary>Host reference forward in double: hidden activations (post-ReLU) and logits (pre-sigmoid).</summary>
    public (double[] Hidden, double[] Logits) Forward(float[] v)
    {
        var (hid, logits, _) = ForwardAll(v);
        return (hid, logits);
    }

    /// <summary>Host reference forward: hidden activations, step logits and boundary logits (empty for the fixed kind).</summary>
    public (double[] Hidden, double[] Logits, double[] BoundaryLogits) ForwardAll(float[] v)
    {
        int h = Info.Hidden, k = Info.Decisions, d = Info.InputDim;
        var hid = new double[h];
        for (int j = 0; j < h; j++)
        {
            double acc = Fc1B[j];
            for (int p = 0; p < d; p++) acc += (double)Fc1W[j * d + p] * v[p];
            hid[j] = Math.Max(0, acc);
        }
        var logits = new double[k];
        for (int t = 0; t < k; t++)
        {
            double acc = Fc2B[t];
            for (int j = 0; j < h; j++) acc += Fc2W[t * h + j] * hid[j];
            logits[t] = acc;
        }
        var choice = new double[Info.BoundaryChoices];
        for (int c = 0; c < choice.Length; c++)
        {
            double acc = Fc3B![c];
            for (int j = 0; j < h; j++) acc += Fc3W![c * h + j] * hid[j];
            choice[c] = acc;
        }
        return (hid, logits, choice);
    }

    /// <summary>softmax of the boundary logits, in double.</summary>
    public static double[] Softmax(IReadOnlyList<double> z)
    {
        double max = z.Max();
        var e = z.Select(v => Math.Exp(v - max)).ToArray();
        double sum = e.Sum();
        return e.Select(v => v / sum).ToArray();
    }

    /// <summary>The greedy boundary choice: the index of the largest logit, the first on a tie.</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int c = 1; c < logits.Length; c++) if (logits[c] > logits[best]) best = c;
        return best;
    }

    public static double Sigmoid(double z) => z >= 0 ? 1 / (1 + Math.Exp(-z)) : Math.Exp(z) / (1 + Math.Exp(z));

    /// <summary>Greedy decisions: cache (true) where m = sigmoid(logit) ≥ 0.5, i.e. logit ≥ 0.</summary>
    public static bool[] Threshold(ReadOnlySpan<float> logits)
    {
        var u = new bool[logits.Length];
        for (int t = 0; t < u.Length; t++) u[t] = logits[t] >= 0f;
        return u;
    }
}

/// <summary>Logits of a batch on the host: Steps (n, s − ρ), Boundaries (n, K_b) or null for a fixed-boundary network.</summary>
public sealed record AdaLogits(float[] Steps, float[]? Boundaries);

/// <summary>The decision network on the device: logits (B, s − ρ) (and (B, K_b)) of a batch of samples, via Gemm.</summary>
public sealed class AdaDecisionNetwork : IDisposable
{
    readonly ComputeDevice dev;
    readonly Tensor fc1W, fc1B, fc2W, fc2B;   // fp32, PyTorch layout [out, in] (Gemm: y = x·Wᵀ + b)
    readonly Tensor? fc3W, fc3B;              // the boundary head (learned kind)
    Tensor? input, hidden, logits, choices;
    MemoryBuffer1D<int, Stride1D.Dense>? labels;

    public AdaWeights Weights { get; }
    public AdaPolicyInfo Info => Weights.Info;

    public AdaDecisionNetwork(ComputeDevice dev, AdaWeights w)
    {
        this.dev = dev;
        Weights = w;
        var i = w.Info;
        fc1W = Tensor.FromHost(dev, "ada.fc1.weight", w.Fc1W, i.Hidden, i.InputDim);
        fc1B = Tensor.FromHost(dev, "ada.fc1.bias", w.Fc1B, i.Hidden);
        fc2W = Tensor.FromHost(dev, "ada.fc2.weight", w.Fc2W, i.Decisions, i.Hidden);
        fc2B = Tensor.FromHost(dev, "ada.fc2.bias", w.Fc2B, i.Decisions);
        if (!i.LearnsBoundary) return;
        fc3W = Tensor.FromHost(dev, "ada.fc3.weight", w.Fc3W!, i.BoundaryChoices, i.Hidden);
        fc3B = Tensor.FromHost(dev, "ada.fc3.bias", w.Fc3B!, i.BoundaryChoices);
    }

    /// <summary>logits (n, s − ρ) = fc2(ReLU(fc1([x, onehot(y)]))) and, learned kind, (n, K_b) = fc3(ReLU(…)) for
    /// x (n, C, H, W) on the device; returned on the host. A caption-conditioned network takes captions (n, D_text), the
    /// samples' caption summaries, instead of the labels (fc1([x, c])).</summary>
    public AdaLogits Forward(Tensor x, IReadOnlyList<int> y, Tensor? captions = null)
    {
        var i = Info;
        int n = y.Count;
        if (x.Length != (long)n * i.Pixels)
            throw new ArgumentException($"ada network: expected {n} samples of {i.SampleText}, found x {x.ShapeString()}");
        if (i.ReadsCaptions != (captions != null))
            throw new ArgumentException($"ada network: conditioned on {i.ConditionText}, given {(captions != null ? "captions" : "class labels")}");
        if (captions != null && captions.Length != (long)n * i.CaptionWidth)
            throw new ArgumentException($"ada network: expected caption summaries ({n}, {i.CaptionWidth}), found {captions.ShapeString()}");
        if (!i.ReadsCaptions)
            foreach (var label in y)
                if (label < 0 || label >= i.Classes) throw new ArgumentException($"ada network: class {label} outside 0..{i.Classes - 1}");
        if (input == null || input.Shape[0] != n)
        {
            DisposeBuffers();
            input = Tensor.Allocate(dev, "ada.input", n, i.InputDim);
            hidden = Tensor.Allocate(dev, "ada.hidden", n, i.Hidden);
            logits = Tensor.Allocate(dev, "ada.logits", n, i.Decisions);
            if (i.LearnsBoundary) choices = Tensor.Allocate(dev, "ada.boundary_logits", n, i.BoundaryChoices);
            if (!i.ReadsCaptions) labels = dev.Accelerator.Allocate1D<int>(n);
        }
        if (captions != null)
            RowConcat.Run(dev, x.View, captions.View, input.View, n, i.Pixels, i.CaptionWidth);     // (n, P + D_text)
        else
        {
            labels!.View.CopyFromCPU(y.ToArray());
            OneHotConcat.Run(dev, x.View, labels.View, input.View, n, i.Pixels, i.Classes);     // (n, P + K_cls)
        }
        Gemm.Run(dev, input.View, fc1W.View, fc1B.View, hidden!.View, n, Info.Hidden, Info.InputDim, Epilogue.Relu);  // (n, hidden)
        Gemm.Run(dev, hidden.View, fc2W.View, fc2B.View, logits!.View, n, Info.Decisions, Info.Hidden);              // (n, s − ρ)
        if (!i.LearnsBoundary) return new AdaLogits(logits!.ToHost(), null);
        Gemm.Run(dev, hidden.View, fc3W!.View, fc3B!.View, choices!.View, n, i.BoundaryChoices, Info.Hidden);        // (n, K_b)
        return new AdaLogits(logits!.ToHost(), choices!.ToHost());
    }

    void DisposeBuffers()
    {
        input?.Dispose(); hidden?.Dispose(); logits?.Dispose(); choices?.Dispose(); labels?.Dispose();
        input = hidden = logits = choices = null; labels = null;
    }

    public void Dispose()
    {
        DisposeBuffers();
        foreach (var t in new[] { fc1W, fc1B, fc2W, fc2B, fc3W, fc3B }) t?.Dispose();
    }
}

// Training loop of BlockDance-Ada (see TrainAdaCommand for the reward and its justification).
//
// Any model behind the seam (IBlockModel) with its conditioning (Conditioning, one entry per training sample): the DiT
// with class labels (round robin), PixArt-α and STDiT with caption features (the prompts in turn); the network reads the
// class one-hot or the caption summary (AdaDecisionNetwork's header).
// 1. Trajectories, once: every training sample (its condition, seeded noise) is sampled without
//    cache. On the way, at step ρ, the recorder keeps z_ρ and the block-b features of step ρ−1 (its
//    cond and uncond rows) on the host; the final sample is the quality reference. Storing block b's
//    output changes nothing numerically (the N = 1 bit-identity test), so z_ρ and the features are
//    exactly what an Ada run reaches at step ρ: all steps before ρ are cache steps.
// 2. Episodes: per batch, the host network gives m for each sample, decisions u ~ Bernoulli(m) are
//    drawn, and only steps ρ..s−1 run (x = z_ρ, cache buffer = the recorded features, per-sample plans
//    from AdaPolicy.WithDecisions). Reward R = C(u) + λ·Q(u) per sample, advantages against the
//    leave-one-out batch mean, one Adam step on J = mean(A·log π(u)).
// Learned boundary (options Boundaries): the recorder keeps the step-(ρ−1) features of every candidate boundary,
// the episode loads them all, each sample also draws its boundary k ~ q = softmax(fc3 h), and the compute term
// counts the blocks that boundary skips: C = (fraction of the s − ρ steps reused)·(b_k + 1)/(b_max + 1), so reusing
// every step at the deepest candidate is C = 1 as with a fixed boundary (where C is the reuse fraction, as before).
// DDIM with η = 0 only: the remaining steps are then deterministic given z_ρ, so an episode is a pure
// function of (sample, u) and batches can be reshuffled every epoch. Q for a video sample (C, F, H, W): the mean SSIM over
// its frames (each frame a C-channel image); a sample smaller than SSIM's 11×11 window (the tiny test fixtures) uses the
// largest odd window that fits (ImageMetrics.SsimWindowFor).
using System.Diagnostics;
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Sampler.Evaluation;
using BlockDance.Transformer;

namespace BlockDance.Sampler.Ada;

public sealed record AdaTrainOptions
{
    public int Steps { get; init; } = 50;
    public float Cfg { get; init; } = 4f;
    public int Samples { get; init; } = 32;
    public int Batch { get; init; } = 16;
    public int Epochs { get; init; } = 16;
    public double LearningRate { get; init; } = 3e-3;
    public double Lambda { get; init; } = 2;
    public double RhoFraction { get; init; } = AdaPolicyInfo.DefaultRhoFraction;
    public int Hidden { get; init; } = 128;
    /// <summary>Noise seed of the training samples; eval uses seed 0, so the default keeps them apart.</summary>
    public ulong Seed { get; init; } = 1000;
    /// <summary>Seed of the initial weights and of the Bernoulli draws.</summary>
    public int InitSeed { get; init; }
    public int? Boundary { get; init; }
    /// <summary>Learn the boundary per sample among these blocks (ascending); null = the fixed Boundary.</summary>
    public IReadOnlyList<int>? Boundaries { get; init; }
    /// <summary>Start the step head at BlockDance-N's pattern: the bias of decided step t is +InitLogit when t mod N = 0
    /// (cache), −InitLogit otherwise (reuse); null = zero biases (m ≈ 0.5 everywhere).</summary>
    public int? InitN { get; init; }
    public double InitLogit { get; init; } = 2;
    /// <summary>The guided ε channels (the DiT's and STDiT's official first 3; PixArt-α: all).</summary>
    public CfgChannels CfgChannels { get; init; } = CfgChannels.Official;
}

/// <summary>One epoch: mean reward, C (fraction reused) and Q (SSIM) of the sampled episodes, the mean cache
/// probability m, the greedy (thresholded) reuse fraction after the epoch's updates, seconds.</summary>
public sealed record AdaEpochLog(int Epoch, double Reward, double C, double Q, double MeanM, double GreedyReuse, double Seconds);

public sealed class AdaTrainer
{
    /// <summary>A training sample: its index into the conditioning, class (0 for a caption model), z_ρ (C, [F,] H, W), per
    /// boundary (the fixed one, or every candidate) the block's features of step ρ−1 (rows per sample × T × D), the
    /// uncached final sample (C, [F,] H, W).</summary>
    public sealed record Item(int Index, int Class, float[] Z, float[][] Features, float[] Reference);

    readonly IBlockModel model;
    readonly Conditioning conditioning;
    readonly float[]? captions;   // (samples, D_text) the caption summaries the network reads; null for class labels
    readonly AdaTrainOptions o;
    readonly Schedule schedule;
    readonly Random rng;
    public AdaPolicyInfo Info { get; }
    public AdaWeights Weights { get; }
    public List<Item> Items { get; } = new();
    public double TrajectorySeconds { get; private set; }
    /// <summary>Mean model seconds per step of the last episode (for the decision network's overhead).</summary>
    public double LastEpisodeStepSeconds { get; private set; }

    /// <param name="conditioning">One entry per training sample (options.Samples): class labels, or captions.</param>
    public AdaTrainer(IBlockModel model, Conditioning conditioning, AdaTrainOptions options)
    {
        this.model = model;
        o = options;
        if (conditioning.Count != o.Samples)
            throw new ArgumentException($"ada trainer: expected a condition per training sample ({o.Samples}), found {conditioning.Count}");
        this.conditioning = conditioning;
        var cfg = model.Shape;
        int rho = AdaPolicyInfo.DefaultRho(o.Steps, o.RhoFraction);
        var pc = conditioning.PolicyCaptions;
        captions = pc?.Values;
        int classes = pc is null ? cfg.Classes : 0, width = pc?.Width ?? 0;
        Info = o.Boundaries is { } bs
            ? AdaPolicyInfo.Learned(o.Steps, rho, cfg.InChannels, cfg.InputSize, cfg.InputSize, classes, o.Hidden, bs, o.Lambda, cfg.Frames, width)
            : new AdaPolicyInfo(o.Steps, rho, cfg.InChannels, cfg.InputSize, cfg.InputSize, classes, o.Hidden,
                o.Boundary ?? BlockDanceConfig.DefaultBoundary(cfg.Depth), o.Lambda, Frames: cfg.Frames, CaptionWidth: width);
        Info.CheckRun(PlanRunner.Stack(model.Shape, default), o.Steps);
        schedule = new Schedule(o.Steps, Spacing.Even);
        Weights = AdaWeights.Init(Info, o.InitSeed);
        if (o.InitN is int n)
            for (int t = 0; t < Info.Decisions; t++) Weights.Fc2B[t] = (float)(t % n == 0 ? o.InitLogit : -o.InitLogit);
        rng = new Random(o.InitSeed);
    }

    /// <summary>The boundaries whose features an episode needs: the fixed one, or every candidate.</summary>
    int[] Stored => Info.Candidates?.ToArray() ?? [Info.Boundary];

    int RowsPerSample => o.Cfg > 1 ? 2 : 1;
    int FeatureRow => model.Shape.RowLength;

    // ------------------------------------------------------------------ 1. trajectories (once)
    /// <summary>Samples every training item without cache and records z_ρ, the step-(ρ−1) features and the final sample.</summary>
    public void RecordTrajectories(Action<int, int>? progress = null)
    {
        var cfg = model.Shape;
        var sw = Stopwatch.StartNew();
        int per = Info.Pixels;
        for (int first = 0; first < o.Samples; first += o.Batch)
        {
            int b = Math.Min(o.Batch, o.Samples - first);
            var cond = conditioning.Slice(first, b);
            var cls = cond.PolicyLabels;
            using var rec = new TrajectoryRecorder(Info.Rho, Stored);
            using var den = new GuidedDenoiser(model, cond, o.Cfg, o.CfgChannels, rec, o.Steps);
            using var x = Tensor.Allocate(model.Device, "x", cfg.Batch(b));
            new SeededNoise(o.Seed, first).Fill(x, 0);
            new DiffusionSampler(schedule, SamplerKind.Ddim).Run(den, x, new SeededNoise(o.Seed, first), cfg.OutChannels);
            var final = x.ToHost();
            for (int i = 0; i < b; i++)
            {
                var feats = rec.Features!.Select(all =>
                {
                    var f = new float[RowsPerSample * FeatureRow];
                    for (int r = 0; r < RowsPerSample; r++)
                        Array.Copy(all, (long)(r * b + i) * FeatureRow, f, (long)r * FeatureRow, FeatureRow);
                    return f;
                }).ToArray();
                Items.Add(new Item(first + i, cls[i], rec.Z![(i * per)..((i + 1) * per)], feats, final[(i * per)..((i + 1) * per)]));
            }
            progress?.Invoke(first + b, o.Samples);
        }
        TrajectorySeconds = sw.Elapsed.TotalSeconds;
    }

    // ------------------------------------------------------------------ 2. episodes
    /// <summary>Runs steps ρ..s−1 for the items with the given decisions (true = cache) and, learned boundary, candidate
    /// choices; returns the final samples (B, C, H, W).</summary>
    public float[] Episode(IReadOnlyList<Item> items, bool[][] decisions, int[]? choices = null)
    {
        var cfg = model.Shape;
        int b = items.Count, rows = RowsPerSample;
        using var policy = AdaPolicy.WithDecisions(Weights, decisions, choices);
        using var den = new GuidedDenoiser(model, conditioning.Pick(items.Select(it => it.Index).ToArray()), o.Cfg, o.CfgChannels, policy, o.Steps);
        var stored = Stored;
        for (int k = 0; k < stored.Length; k++)
        {
            var feature = new float[rows * b * FeatureRow];
            for (int i = 0; i < b; i++)
                for (int r = 0; r < rows; r++)
                    Array.Copy(items[i].Features[k], (long)r * FeatureRow, feature, (long)(r * b + i) * FeatureRow, FeatureRow);
            policy.Store!.Load(stored[k], feature);   // the step-(ρ−1) features: the episode starts at step ρ
        }
        using var x = Tensor.FromHost(model.Device, "x", items.SelectMany(it => it.Z).ToArray(), cfg.Batch(b));
        var sampler = new DiffusionSampler(schedule, SamplerKind.Ddim) { ProfileSteps = true };   // the log reports model time per step
        sampler.Run(den, x, new SeededNoise(o.Seed), cfg.OutChannels, firstStep: Info.Rho);
        LastEpisodeStepSeconds = sampler.Timings.Average(t => t.ModelSeconds);
        return x.ToHost();
    }

    /// <summary>C = fraction of the s − ρ steps reused (learned boundary: times (b + 1)/(b_max + 1) for the sample's
    /// boundary b); Q = SSIM of the final sample to the uncached one, in [0, 1] (a video: the mean over its frames).</summary>
    public (double C, double Q) Score(Item item, float[] finals, int i, bool[] u, int? choice = null)
    {
        int per = Info.Pixels;
        double c = u.Count(x => !x) / (double)u.Length;
        if (choice is int k) c *= (Info.Candidates![k] + 1.0) / (Info.Boundary + 1);
        var got = ImageMetrics.ToUnitRange(finals[(i * per)..((i + 1) * per)]);
        var want = ImageMetrics.ToUnitRange(item.Reference);
        double q = Math.Clamp(Quality(got, want, Info), 0, 1);
        return (c, q);
    }

    /// <summary>SSIM of two samples in [0, 1] (C, H, W), or the mean over the frames of two videos (C, F, H, W); the window is
    /// SSIM's 11×11, or the largest odd one that fits a smaller sample.</summary>
    public static double Quality(float[] got, float[] want, AdaPolicyInfo info)
    {
        int window = ImageMetrics.SsimWindowFor(info.Height, info.Width);
        if (info.Frames == 0) return ImageMetrics.Ssim(got, want, info.Channels, info.Height, info.Width, window);
        int f = info.Frames, hw = info.Height * info.Width;
        double sum = 0;
        var a = new float[info.Channels * hw];
        var b = new float[a.Length];
        for (int t = 0; t < f; t++)
        {
            for (int ch = 0; ch < info.Channels; ch++)   // frame t of (C, F, H, W) as a (C, H, W) image
            {
                Array.Copy(got, ((long)ch * f + t) * hw, a, (long)ch * hw, hw);
                Array.Copy(want, ((long)ch * f + t) * hw, b, (long)ch * hw, hw);
            }
            sum += ImageMetrics.Ssim(a, b, info.Channels, info.Height, info.Width, window);
        }
        return sum / f;
    }

    float[] Input(Item it) => captions is null ? Weights.Input(it.Z, 0, it.Class) : Weights.Input(it.Z, 0, CaptionOf(it));

    /// <summary>The caption summary (D_text) of a caption model's item.</summary>
    float[] CaptionOf(Item it) => captions![(it.Index * Info.CaptionWidth)..((it.Index + 1) * Info.CaptionWidth)];

    /// <summary>The caption summaries (n, D_text) of the items, for the device forward; null for class labels.</summary>
    public float[]? Captions(IReadOnlyList<Item> items) => captions is null ? null : items.SelectMany(CaptionOf).ToArray();

    /// <summary>Greedy reuse fraction of the current weights over the training items (host forward).</summary>
    public double GreedyReuse() => Items.Average(it =>
        Weights.Forward(Input(it)).Logits.Count(z => z < 0) / (double)Info.Decisions);

    /// <summary>The greedy boundary choice of an item (null for a fixed boundary).</summary>
    public int? GreedyChoice(Item it) =>
        Info.LearnsBoundary ? AdaWeights.ArgMax(Weights.ForwardAll(Input(it)).BoundaryLogits.Select(z => (float)z).ToArray()) : null;

    /// <summary>How many training items greedily pick each candidate ("b=2 ×5, b=4 ×11"; empty for a fixed boundary).</summary>
    public string GreedyBoundaries() => !Info.LearnsBoundary ? "" : string.Join(", ",
        Items.Select(it => Info.Candidates![GreedyChoice(it)!.Value]).GroupBy(b => b).OrderBy(g => g.Key).Select(g => $"b={g.Key} ×{g.Count()}"));

    /// <summary>k ~ softmax(c) (learned boundary; null otherwise).</summary>
    int? DrawChoice(double[] c)
    {
        if (!Info.LearnsBoundary) return null;
        var q = AdaWeights.Softmax(c);
        double r = rng.NextDouble(), acc = 0;
        for (int k = 0; k < q.Length - 1; k++)
            if (r < (acc += q[k])) return k;
        return q.Length - 1;
    }

    /// <summary>Runs the epochs; calls log after each. Returns the per-epoch logs.</summary>
    public List<AdaEpochLog> Train(Action<AdaEpochLog>? log = null)
    {
        if (Items.Count == 0) throw new InvalidOperationException("ada: RecordTrajectories first");
        var adam = new Adam(o.LearningRate);
        var grad = new AdaGradient(Info);
        var logs = new List<AdaEpochLog>();
        for (int epoch = 1; epoch <= o.Epochs; epoch++)
        {
            var sw = Stopwatch.StartNew();
            var order = Enumerable.Range(0, Items.Count).OrderBy(_ => rng.Next()).ToArray();
            double sumR = 0, sumC = 0, sumQ = 0, sumM = 0;
            for (int first = 0; first < order.Length; first += o.Batch)
            {
                var batch = order.Skip(first).Take(o.Batch).Select(i => Items[i]).ToList();
                var inputs = batch.Select(Input).ToList();
                var decisions = new bool[batch.Count][];
                var choices = new int?[batch.Count];
                for (int i = 0; i < batch.Count; i++)
                {
                    var (_, z, cz) = Weights.ForwardAll(inputs[i]);
                    decisions[i] = new bool[Info.Decisions];
                    for (int t = 0; t < z.Length; t++)
                    {
                        double m = AdaWeights.Sigmoid(z[t]);
                        sumM += m / Info.Decisions;
                        decisions[i][t] = rng.NextDouble() < m;    // u_t ~ Bernoulli(m_t): 1 = cache step
                    }
                    choices[i] = DrawChoice(cz);                   // k ~ softmax(c): the boundary candidate
                }
                var finals = Episode(batch, decisions, Choices(choices));
                var rewards = new double[batch.Count];
                for (int i = 0; i < batch.Count; i++)
                {
                    var (c, q) = Score(batch[i], finals, i, decisions[i], choices[i]);
                    rewards[i] = c + o.Lambda * q;
                    sumR += rewards[i]; sumC += c; sumQ += q;
                }
                var adv = AdaReinforce.Advantages(rewards);
                grad.Clear();
                for (int i = 0; i < batch.Count; i++)
                    AdaReinforce.Accumulate(Weights, inputs[i], decisions[i], adv[i] / batch.Count, grad, choices[i]);
                adam.Step(Weights, grad);
            }
            int n = Items.Count;
            var entry = new AdaEpochLog(epoch, sumR / n, sumC / n, sumQ / n, sumM / n, GreedyReuse(), sw.Elapsed.TotalSeconds);
            logs.Add(entry);
            log?.Invoke(entry);
        }
        return logs;
    }

    /// <summary>The thresholded policy on the training items: mean C and Q (one episode per batch).</summary>
    public (double C, double Q) EvaluateGreedy()
    {
        double sc = 0, sq = 0;
        for (int first = 0; first < Items.Count; first += o.Batch)
        {
            var batch = Items.Skip(first).Take(o.Batch).ToList();
            var decisions = batch.Select(it => AdaWeights.Threshold(Weights.Forward(Input(it)).Logits.Select(z => (float)z).ToArray())).ToArray();
            var choices = batch.Select(GreedyChoice).ToArray();
            var finals = Episode(batch, decisions, Choices(choices));
            for (int i = 0; i < batch.Count; i++)
            {
                var (c, q) = Score(batch[i], finals, i, decisions[i], choices[i]);
                sc += c; sq += q;
            }
        }
        return (sc / Items.Count, sq / Items.Count);
    }

    static int[]? Choices(int?[] choices) => choices.All(c => c.HasValue) ? choices.Select(c => c!.Value).ToArray() : null;

    /// <summary>Every step a cache step storing the boundaries' outputs (bit-identical to no cache: a Cache plan for one
    /// boundary, a Ladder of caching rows for several); at step ρ it copies the sample x and the features of step ρ−1
    /// (per boundary) to the host.</summary>
    sealed class TrajectoryRecorder(int rho, int[] boundaries) : ICachePolicy
    {
        FeatureStore? store;
        public float[]? Z { get; private set; }
        public float[][]? Features { get; private set; }
        public string Describe() => "ada trajectory recorder";
        public long MemoryBytes => store?.Bytes ?? 0;

        public void Check(BlockStack stack, int steps) { }

        public void Begin(BlockStack stack, ComputeDevice device, int steps) =>
            store = new FeatureStore(device, stack, "ada.record");

        public BlockPlan Plan(StepContext step)
        {
            if (step.Step == rho)
            {
                Z = step.X.ToHost();
                Features = boundaries.Select(b => store!.Feature(b).ToHost()).ToArray();
            }
            return boundaries.Length == 1 ? BlockPlan.Cache(store!, boundaries[0])
                : BlockPlan.Of(new LadderPlan(store!, boundaries, new int?[step.Cfg.ModelBatch]));
        }

        public void Dispose() => store?.Dispose();
    }
}

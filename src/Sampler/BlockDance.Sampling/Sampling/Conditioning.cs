// What the samples of a run are conditioned on, one entry per sample, abstracted so that one guided denoiser and
// one session serve every model:
//   ClassLabels   a class-conditional DiT: label y per sample; the unconditional half of a guided batch is the
//                 null label (NumClasses)
//   Captions      a caption-conditioned model (ICaptionModel: PixArt-α, Open-Sora 1.0's STDiT): caption features and
//                 masks per sample (PromptEmbeds); the unconditional half is the negative captions (one row shared,
//                 or one per sample; for STDiT its learned null caption, see PromptEmbeds' caller)
// Another kind is one more subclass: Bind puts its conditioning on its model and says which conditioning row each
// model row reads; Slice cuts it to a batch of samples.
using BlockDance.Kernels;
using BlockDance.Transformer;

namespace BlockDance.Sampling;

public abstract class Conditioning
{
    /// <summary>Samples (B).</summary>
    public abstract int Count { get; }

    /// <summary>The per-sample labels a cache policy sees (StepContext.Classes): the class labels, or zeros.</summary>
    public abstract int[] PolicyLabels { get; }

    /// <summary>What the policy sees of each sample's caption (StepContext.Captions): (B, D_text) caption summaries
    /// (CaptionSet.MaskedMean), and D_text; null for class labels.</summary>
    public virtual (float[] Values, int Width)? PolicyCaptions => null;

    /// <summary>Samples first..first + count − 1 as a conditioning of their own (a batch of a longer run).</summary>
    public abstract Conditioning Slice(int first, int count);

    /// <summary>The listed samples, in the listed order, as a conditioning of their own (the Ada trainer's shuffled batches).</summary>
    public abstract Conditioning Pick(IReadOnlyList<int> samples);

    /// <summary>n samples taking the entries in turn (sample i gets entry i mod Count): a calibration run's samples
    /// over a few classes or prompts.</summary>
    public abstract Conditioning Cycle(int n);

    /// <summary>Puts the conditioning on the model for a model batch of Count rows, or 2·Count when guided
    /// ([conditional; unconditional], CfgLayout); returns the conditioning row `y` of each model row (IBlockModel.Embed).</summary>
    public abstract int[] Bind(IBlockModel model, bool guided);

    /// <summary>A short description for logs and messages.</summary>
    public abstract string Describe();

    protected static T Expect<T>(IBlockModel model, string what) where T : class =>
        model as T ?? throw new InvalidValueException("conditioning", $"{what} for a {Kind(typeof(T))} model", $"a {model.GetType().Name} model");

    static string Kind(Type t) => t == typeof(ICaptionModel) ? "caption-conditioned (PixArt-α, STDiT)" : t.Name;
}

/// <summary>Class labels of a class-conditional DiT.</summary>
public sealed class ClassLabels(IReadOnlyList<int> labels) : Conditioning
{
    readonly int[] labels = labels.ToArray();
    public IReadOnlyList<int> Labels => labels;
    public override int Count => labels.Length;
    public override int[] PolicyLabels => labels;
    public override Conditioning Slice(int first, int count) => new ClassLabels(labels[first..(first + count)]);
    public override Conditioning Pick(IReadOnlyList<int> samples) => new ClassLabels(samples.Select(i => labels[i]).ToArray());
    public override Conditioning Cycle(int n) => new ClassLabels(Enumerable.Range(0, n).Select(i => labels[i % labels.Length]).ToArray());
    public override string Describe() => $"classes {string.Join(",", labels)}";

    public override int[] Bind(IBlockModel model, bool guided)
    {
        var dit = Expect<DiT>(model, "class labels");
        var cfg = dit.Config;
        foreach (var y in labels)
            if (y < 0 || y >= cfg.NumClasses)
                throw new InvalidValueException("class", $"0..{cfg.NumClasses - 1} for this model", $"{y}");
        var rows = guided ? labels.Concat(Enumerable.Repeat(cfg.NullClass, labels.Length)).ToArray() : labels.ToArray();
        dit.Prepare(rows.Length);
        dit.UploadLabels(rows);   // before the step loop: a step copies nothing host → device
        return rows;
    }
}

/// <summary>Caption features (PixArt-α, STDiT): one prompt row per sample, and the negatives for guidance.</summary>
public sealed class Captions(PromptEmbeds prompts) : Conditioning
{
    public PromptEmbeds Prompts => prompts;
    public override int Count => prompts.Prompts.Count;
    public override int[] PolicyLabels => new int[Count];
    public override string Describe() => $"{Count} caption(s) × {prompts.Prompts.Tokens} tokens";
    public override (float[] Values, int Width)? PolicyCaptions => (prompts.Prompts.MaskedMean(), prompts.Prompts.Channels);

    public override Conditioning Pick(IReadOnlyList<int> samples)
    {
        var neg = prompts.Negative is { Count: > 1 } n ? n.Pick(samples) : prompts.Negative;
        return new Captions(new PromptEmbeds(prompts.Prompts.Pick(samples), neg));
    }

    public override Conditioning Slice(int first, int count)
    {
        if (first == 0 && count == Count) return this;
        var neg = prompts.Negative is { Count: > 1 } n ? n.Rows(first, count) : prompts.Negative;
        return new Captions(new PromptEmbeds(prompts.Prompts.Rows(first, count), neg));
    }

    public override Conditioning Cycle(int n)
    {
        if (n == Count) return this;
        var neg = prompts.Negative is { Count: > 1 } ng ? Repeat(ng, n) : prompts.Negative;
        return new Captions(new PromptEmbeds(Repeat(prompts.Prompts, n), neg));
    }

    static CaptionSet Repeat(CaptionSet s, int n)
    {
        long row = (long)s.Tokens * s.Channels;
        var e = new float[n * row];
        var m = new float[(long)n * s.Tokens];
        for (int i = 0; i < n; i++)
        {
            Array.Copy(s.Embeds, i % s.Count * row, e, i * row, row);
            Array.Copy(s.Mask, (long)(i % s.Count) * s.Tokens, m, (long)i * s.Tokens, s.Tokens);
        }
        return new CaptionSet(e, m, n, s.Tokens, s.Channels);
    }

    public override int[] Bind(IBlockModel model, bool guided)
    {
        var captionModel = Expect<ICaptionModel>(model, "captions");
        int b = Count;
        CaptionSet captions = prompts.Prompts;
        int[] rows;
        if (guided)
        {
            var neg = prompts.Negative ?? throw new InvalidValueException("negative captions", "the unconditional captions (guidance needs them)", "none");
            captions = CaptionSet.Concat(prompts.Prompts, neg);
            rows = Enumerable.Range(0, b).Concat(Enumerable.Range(0, b).Select(i => b + (neg.Count == 1 ? 0 : i))).ToArray();
        }
        else rows = Enumerable.Range(0, b).ToArray();
        captionModel.SetCaptions(captions.Embeds, captions.Mask, captions.Count, captions.Tokens);
        captionModel.BindRows(rows);   // before the step loop: a step copies nothing host → device
        return rows;
    }
}

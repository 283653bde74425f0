// What `blockdance eval` prints about an `ada` row: its detail cell and its note.
using System.Globalization;
using BlockDance.Cache;
using BlockDance.Kernels;

namespace BlockDance.Sampler.Ada;

public static class AdaEval
{
    /// <summary>"b=3, rho=20, 57% of steps ≥ rho reused": the reuse share is exact, from the blocks skipped per sample
    /// (each reused step skips blocks 0..b, i.e. b + 1 blocks).</summary>
    public static string Detail(AdaPolicyInfo info, SamplingResult r)
    {
        if (info.LearnsBoundary)   // the boundary differs per sample: the blocks skipped are what is exact
            return string.Create(CultureInfo.InvariantCulture,
                $"b learned of {{{string.Join(",", info.Candidates!)}}}, rho={info.Rho}, {r.BlocksSkipped:F1} blocks skipped per sample in steps ≥ rho");
        double reusedSteps = r.BlocksSkipped / (info.Boundary + 1);
        return string.Create(CultureInfo.InvariantCulture,
            $"b={info.Boundary}, rho={info.Rho}, {100 * reusedSteps / info.Decisions:F0}% of steps ≥ rho reused");
    }

    /// <summary>Compiles the decision network's kernels before the timed runs (as eval's warm-up does for the model).</summary>
    public static void Warmup(ComputeDevice dev, AdaWeights w, int batch)
    {
        var i = w.Info;
        using var net = new AdaDecisionNetwork(dev, w);
        using var x = Tensor.Allocate(dev, "ada.warmup", batch, i.Pixels);
        using var captions = Captions(dev, i, batch);
        _ = net.Forward(x, new int[batch], captions);
    }

    /// <summary>The decision network's inference time per sample: the median of `runs` synchronized forwards on a batch
    /// of `batch` samples (after one untimed forward), divided by the batch. Ada runs it once per sample, at step rho.</summary>
    public static double OverheadSecondsPerSample(ComputeDevice dev, AdaWeights w, int batch, int runs = 21)
    {
        var i = w.Info;
        using var net = new AdaDecisionNetwork(dev, w);
        using var x = Tensor.Allocate(dev, "ada.overhead", batch, i.Pixels);
        using var captions = Captions(dev, i, batch);
        var labels = new int[batch];
        net.Forward(x, labels, captions);
        dev.Synchronize();
        var t = new double[runs];
        for (int r = 0; r < runs; r++)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            net.Forward(x, labels, captions);
            dev.Synchronize();
            t[r] = sw.Elapsed.TotalSeconds;
        }
        Array.Sort(t);
        return t[runs / 2] / batch;
    }

    /// <summary>Zero caption summaries (batch, D_text) for a caption-conditioned network's timing; null for a class one.</summary>
    static Tensor? Captions(ComputeDevice dev, AdaPolicyInfo i, int batch)
    {
        if (!i.ReadsCaptions) return null;
        var t = Tensor.Allocate(dev, "ada.captions", batch, i.CaptionWidth);
        t.Zero();
        return t;
    }

    static string BoundaryText(AdaPolicyInfo i) => i.LearnsBoundary
        ? $"b, b the sample's boundary picked by the network's boundary head among {string.Join(",", i.Candidates!)}"
        : i.Boundary.ToString(CultureInfo.InvariantCulture);

    public static string Note(AdaWeights w, string path)
    {
        var md = w.Metadata;
        string trained = md.TryGetValue("train_model", out var m)
            ? $"trained on {m} (train_steps {md.GetValueOrDefault("train_model_steps", "?")}), {md.GetValueOrDefault("train_samples", "?")} samples × " +
              $"{md.GetValueOrDefault("train_epochs", "?")} epochs, λ = {w.Info.Lambda:G3}, Q = {md.GetValueOrDefault("quality", "?")}"
            : "training settings not recorded";
        return $"ada = BlockDance-Ada ({Path.GetFileName(path)}): steps 0..{w.Info.Rho - 1} cache; a {w.ParameterCount:N0}-parameter MLP reads z_rho and {(w.Info.ReadsCaptions ? "the caption summary (masked mean of the caption features)" : "the class")} " +
               $"and decides steps {w.Info.Rho}..{w.Info.Steps - 1} per sample (m ≥ 0.5 → cache, blocks 0..{BoundaryText(w.Info)} reused otherwise); " +
               $"its forward is included in the wall-clock; {trained}.";
    }
}

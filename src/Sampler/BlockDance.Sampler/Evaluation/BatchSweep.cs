// Latency against the batch size (`eval --batch-sweep`, `bench --batch-sweep`): the same methods timed at each
// sampling batch B (model batch 2B under guidance), B samples in one model batch, in one process on one device. Per
// batch and method: the median wall-clock of the timed runs (after an untimed 2-step warm-up at that batch), the
// speedup over none at the same batch, the FLOP ceiling, and the blocks each sample skipped (mean, min–max,
// standard deviation). A per-sample method whose decisions collapsed at large batches (one decision for the whole
// batch) would show a spread of 0 there; the last column checks the stronger property: every sample's skip count
// equals the one it gets in the largest batch (the engine batches bit-identically, so it must).
using System.Globalization;
using System.Text;
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Transformer;

namespace BlockDance.Sampler.Evaluation;

public sealed record BatchRow(int Batch, int ModelBatch, string Method, double WallSeconds, double WallSpeedup, double FlopSpeedup,
    double SkippedMean, long SkippedMin, long SkippedMax, double SkippedSd, bool? SameAsLargest)
{
    /// <summary>none's median CPU time at the same batch / the method's (EvalRow.CpuSpeedup); null on CUDA.</summary>
    public double? CpuSpeedup { get; init; }
}

public static class BatchSweep
{
    public static readonly int[] DefaultBatches = [1, 2, 4, 8, 16, 32, 64];

    /// <summary>"1,2,4,…": sampling batches, each 1..4096, increasing, no repeats; exit 2 otherwise.</summary>
    public static int[] Parse(string text, string option = "--batch-sweep")
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var list = new List<int>();
        foreach (var p in parts)
        {
            if (!int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out int b) || b < 1 || b > 4096)
                throw new Cli.UsageException($"{option}: expected batch sizes 1..4096 separated by commas (e.g. 1,2,4,8,16,32,64), found '{p}'");
            if (list.Count > 0 && b <= list[^1])
                throw new Cli.UsageException($"{option}: expected increasing batch sizes, found {b} after {list[^1]}");
            list.Add(b);
        }
        return [.. list];
    }

    /// <summary>bench's methods: none first, each built and checked against the model (exit 2); ada is eval's alone (its policy file).</summary>
    public static List<(string Name, Func<ICachePolicy> Make)> Methods(string list, BlockShape cfg, string modelPath, int steps) =>
        Commands.EvalCommand.ParsePolicies(list, option: "--batch-cache").Select(sp => sp.Name == "ada"
            ? throw new Cli.UsageException("--batch-cache: ada needs its policy file: use eval --batch-sweep --policy FILE")
            : (sp.Name, sp.Spec!.Build(cfg, modelPath, steps))).ToList();

    public static List<BatchRow> Run(IBlockModel model, Conditioning all, SamplingOptions baseOpts, IReadOnlyList<(string Name, Func<ICachePolicy> Make)> methods,
        IReadOnlyList<int> batches, int repeats)
    {
        var rows = new List<BatchRow>();
        var largest = new Dictionary<string, long[]>();
        foreach (int b in batches.Reverse())   // the largest batch first: the others are compared with it
        {
            var cond = all.Slice(0, b);
            var opts = baseOpts with { Batch = b, Progress = false };
            Log.Info($"batch sweep: batch {b}: warm-up (2 steps, not timed)");
            SamplingSession.Run(model, cond, opts with { Steps = 2 });
            var wall = methods.ToDictionary(m => m.Name, _ => new List<double>());
            var cpu = methods.ToDictionary(m => m.Name, _ => new List<double>());
            var first = new Dictionary<string, SamplingResult>();
            for (int r = 0; r < repeats; r++)
                foreach (var (name, make) in methods)
                {
                    var res = SamplingSession.Run(model, cond, opts with { Policy = make });
                    wall[name].Add(res.WallSeconds);
                    cpu[name].Add(res.CpuSeconds);
                    first.TryAdd(name, res);
                }
            double noneWall = Median(wall[methods[0].Name]), noneCpu = Median(cpu[methods[0].Name]);
            var batchRows = new List<BatchRow>();
            foreach (var (name, _) in methods)
            {
                var res = first[name];
                var skipped = res.BlocksPerSample!.Select(c => res.BlocksTotal - c).ToArray();
                double mean = skipped.Average(), sd = Math.Sqrt(skipped.Average(s => (s - mean) * (s - mean)));
                bool? same = null;
                if (largest.TryGetValue(name, out var big)) same = skipped.SequenceEqual(big[..b]);
                else largest[name] = skipped;
                double w = Median(wall[name]);
                batchRows.Add(new BatchRow(b, res.ModelBatch, name, w, noneWall / w, res.FlopsUncached / (double)res.FlopsComputed,
                    mean, skipped.Min(), skipped.Max(), sd, same) { CpuSpeedup = model.Device.IsCuda ? null : noneCpu / Median(cpu[name]) });
            }
            rows.InsertRange(0, batchRows);
        }
        return rows;
    }

    public static double Median(IReadOnlyList<double> v)
    {
        var s = v.OrderBy(x => x).ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    public static string Markdown(string caption, IReadOnlyList<BatchRow> rows, int repeats, int largest)
    {
        var sb = new StringBuilder();
        sb.AppendLine(caption).AppendLine();
        bool cpu = rows.Any(r => r.CpuSpeedup != null);
        sb.AppendLine("| batch | model batch | method | wall-clock s | s/sample | speedup wall | " + (cpu ? "speedup CPU | " : "") +
                      "speedup FLOP | blocks skipped per sample: mean, min–max, sd | as at batch " + largest + " |");
        sb.AppendLine("|---:|---:|---|---:|---:|---:|" + (cpu ? "---:|" : "") + "---:|---:|---|");
        foreach (var r in rows)
        {
            string cpuCell = !cpu ? "" : r.CpuSpeedup is double c ? string.Create(CultureInfo.InvariantCulture, $"{c:F3}× | ") : "n/a | ";
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Batch} | {r.ModelBatch} | {r.Method} | {r.WallSeconds:F3} | {r.WallSeconds / r.Batch:F4} | {r.WallSpeedup:F3}× | {cpuCell}{r.FlopSpeedup:F3}× | " +
                $"{r.SkippedMean:0.##}, {r.SkippedMin}–{r.SkippedMax}, {r.SkippedSd:0.##} | {(r.SameAsLargest is bool s ? s ? "same" : "DIFFERENT" : "—")} |"));
        }
        sb.AppendLine();
        sb.AppendLine($"- wall-clock: median of {repeats} timed run(s) of B samples in one model batch; speedup wall = none's median at the same batch / the method's." +
                      (cpu ? " speedup CPU: the same ratio of the process's CPU time (user + system), which does not count time spent waiting for a core." : ""));
        sb.AppendLine("- blocks skipped per sample: block evaluations the sample's conditional model row skipped (of steps × depth); " +
                      $"'as at batch {largest}': every sample's count equals the one it has in the batch-{largest} run.");
        return sb.ToString();
    }
}

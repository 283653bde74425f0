// The Markdown report of `blockdance eval`: one caption line with the counts and settings, one row
// per method and setting, then notes that define every column (and why a column is n/a).
using System.Globalization;
using System.Text;

namespace BlockDance.Sampler.Evaluation;

/// <summary>One setting's measurements. Wall: the median of the timed runs' seconds (the whole run of all samples);
/// the speedups are none's over this setting's (wall: of the medians; FLOP and blocks: the ceilings a perfect
/// implementation would reach). Ssim is null below the SSIM window, Accuracy/Fid where the classifier does not apply.</summary>
public sealed record EvalRow(string Method, string Setting, double WallSeconds, IReadOnlyList<double> WallRuns, double WallSpeedup,
    double FlopSpeedup, double BlockSpeedup, double BlocksSkipped, long BlocksTotal, Interval Psnr, Interval? Ssim,
    Interval? Accuracy, Interval? Fid, int Samples, bool Frontier = false)
{
    public double SkippedFraction => BlocksTotal == 0 ? 0 : BlocksSkipped / (double)BlocksTotal;
    public double SecondsPerSample => WallSeconds / Samples;
    public string Label => Setting.Length > 0 ? $"{Method} {Setting}" : Method;
    /// <summary>A video model's direction-of-motion adherence (fraction of clips); null elsewhere, and then the table has no
    /// motion column.</summary>
    public Interval? Motion { get; init; }
    /// <summary>The median CPU time of the timed runs and none's median over it, on the CPU backend (null on CUDA, where the
    /// host's CPU time says nothing of the device's work); then the table has the two CPU columns.</summary>
    public double? CpuSeconds { get; init; }
    public double? CpuSpeedup { get; init; }
}

public static class EvalTable
{
    public static readonly string[] Columns =
    [
        "method", "setting", "wall-clock s", "s/sample", "speedup wall", "speedup FLOP", "speedup blocks", "blocks skipped",
        "PSNR dB [95% CI]", "SSIM [95% CI]", "accuracy [95% CI]", "FID [95% CI]", "samples",
    ];

    /// <summary>Marks the rows no other row dominates in (wall speedup, PSNR): higher or equal in both, higher in one.</summary>
    public static List<EvalRow> MarkFrontier(IReadOnlyList<EvalRow> rows) =>
        rows.Select(r => r with
        {
            Frontier = !rows.Any(o => o.WallSpeedup >= r.WallSpeedup && o.Psnr.Value >= r.Psnr.Value && (o.WallSpeedup > r.WallSpeedup || o.Psnr.Value > r.Psnr.Value)),
        }).ToList();

    public static string Markdown(string caption, IReadOnlyList<EvalRow> rows, IEnumerable<string> notes)
    {
        bool motion = rows.Any(r => r.Motion != null);   // after accuracy, for video models whose prompts name directions
        bool cpu = rows.Any(r => r.CpuSeconds != null);  // last, on the CPU backend
        var columns = Columns.ToList();
        if (motion) columns.Insert(11, "motion [95% CI]");
        if (cpu) columns.AddRange(["CPU s", "speedup CPU"]);
        var sb = new StringBuilder();
        sb.AppendLine(caption).AppendLine();
        sb.AppendLine("| " + string.Join(" | ", columns) + " |");
        sb.AppendLine("|" + string.Concat(columns.Select(c => c is "method" or "setting" ? "---|" : "---:|")));
        foreach (var r in rows)
        {
            var cells = Cells(r).ToList();
            if (motion) cells.Insert(11, r.Motion is { } m ? Ci(m, "F3") : "n/a");
            if (cpu) cells.AddRange([r.CpuSeconds is double c ? F(c, "F2") : "n/a", r.CpuSpeedup is double cs ? F(cs, "F3") + "×" : "n/a"]);
            sb.AppendLine("| " + string.Join(" | ", cells) + " |");
        }
        sb.AppendLine();
        foreach (var n in notes) sb.AppendLine("- " + n);
        return sb.ToString();
    }

    static IEnumerable<string> Cells(EvalRow r) =>
    [
        r.Method + (r.Frontier ? " ★" : ""),
        r.Setting.Replace("|", "/"),
        F(r.WallSeconds, "F2"),
        F(r.SecondsPerSample, "F4"),
        F(r.WallSpeedup, "F3") + "×",
        F(r.FlopSpeedup, "F3") + "×",
        F(r.BlockSpeedup, "F3") + "×",
        $"{F(r.BlocksSkipped, "0.##")} of {r.BlocksTotal} ({F(100 * r.SkippedFraction, "F1")}%)",
        Ci(r.Psnr, "F2"),
        r.Ssim is { } s ? Ci(s, "F4") : "n/a",
        r.Accuracy is { } a ? Ci(a, "F3") : "n/a",
        r.Fid is { } f ? Ci(f, "F2") : "n/a",
        r.Samples.ToString(CultureInfo.InvariantCulture),
    ];

    /// <summary>"38.08 [37.51, 38.66]"; an interval of one value (identical samples) is the value alone.</summary>
    public static string Ci(Interval i, string format) =>
        i.Lo == i.Hi && i.Lo == i.Value ? N(i.Value, format) : $"{N(i.Value, format)} [{N(i.Lo, format)}, {N(i.Hi, format)}]";

    static string N(double v, string format) => double.IsPositiveInfinity(v) ? "inf" : F(v, format);
    static string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);
}

// The Markdown report of `blockdance eval`: one caption line with the counts and settings, one row
// per cache policy, then notes that define every column (and why a column is n/a).
using System.Globalization;
using System.Text;

namespace BlockDance.Sampler.Evaluation;

/// <summary>One policy's measurements. Accuracy/Fid are null when the classifier does not apply.</summary>
public sealed record EvalRow(string Policy, string Detail, double WallSeconds, double Speedup, double BlocksSkipped, long BlocksTotal,
    double Psnr, double Ssim, double? Accuracy, double? Fid, int Samples, bool Frontier = false)
{
    public double SkippedFraction => BlocksTotal == 0 ? 0 : BlocksSkipped / (double)BlocksTotal;
}

public static class EvalTable
{
    public static readonly string[] Columns =
        ["policy", "wall-clock s", "speedup vs none", "blocks skipped", "PSNR dB", "SSIM", "accuracy", "FID", "samples"];

    /// <summary>Marks the rows no other row dominates in (speedup, PSNR): higher or equal in both, higher in one.</summary>
    public static List<EvalRow> MarkFrontier(IReadOnlyList<EvalRow> rows) =>
        rows.Select(r => r with { Frontier = !rows.Any(o => o.Speedup >= r.Speedup && o.Psnr >= r.Psnr && (o.Speedup > r.Speedup || o.Psnr > r.Psnr)) }).ToList();

    public static string Markdown(string caption, IReadOnlyList<EvalRow> rows, IEnumerable<string> notes)
    {
        var sb = new StringBuilder();
        sb.AppendLine(caption).AppendLine();
        sb.AppendLine("| " + string.Join(" | ", Columns) + " |");
        sb.AppendLine("|" + string.Concat(Columns.Select(c => c == "policy" ? "---|" : "---:|")));
        foreach (var r in rows)
            sb.AppendLine("| " + string.Join(" | ", Cells(r)) + " |");
        sb.AppendLine();
        foreach (var n in notes) sb.AppendLine("- " + n);
        return sb.ToString();
    }

    static IEnumerable<string> Cells(EvalRow r) =>
    [
        (r.Detail.Length > 0 && r.Detail != r.Policy ? $"{r.Policy} ({r.Detail})" : r.Policy) + (r.Frontier ? " ★" : ""),
        F(r.WallSeconds, "F2"),
        F(r.Speedup, "F3") + "×",
        $"{F(r.BlocksSkipped, "0.##")} of {r.BlocksTotal} ({F(100 * r.SkippedFraction, "F1")}%)",
        double.IsPositiveInfinity(r.Psnr) ? "inf" : F(r.Psnr, "F2"),
        F(r.Ssim, "F4"),
        r.Accuracy is double a ? F(a, "F3") : "n/a",
        r.Fid is double f ? F(f, "F2") : "n/a",
        r.Samples.ToString(CultureInfo.InvariantCulture),
    ];

    static string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);
}

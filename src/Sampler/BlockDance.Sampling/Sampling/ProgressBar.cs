using System.Diagnostics;

namespace BlockDance.Sampling;

/// <summary>A one-line console progress bar on stderr: step, it/s, ETA. Redrawn in place on a terminal, one line per
/// 10% when stderr is redirected (a log), nothing at all with Quiet (the program's --quiet).</summary>
public sealed class ProgressBar(int total)
{
    /// <summary>No output at all (set by the program for --quiet; per thread, as the tests run commands in parallel).</summary>
    public static bool Quiet { get => quiet; set => quiet = value; }
    [ThreadStatic] static bool quiet;

    readonly Stopwatch sw = Stopwatch.StartNew();
    const int Width = 30;

    int lastPercent = -1;

    public void Update(int done)
    {
        if (Quiet) return;
        // On a terminal redraw every step; in a log (stderr redirected) one line per 10%.
        int percent = (int)(100L * done / Math.Max(1, total));
        if (Console.IsErrorRedirected && percent / 10 == lastPercent / 10 && done != total) return;
        lastPercent = percent;
        double sec = sw.Elapsed.TotalSeconds, rate = done / Math.Max(sec, 1e-9);
        double eta = (total - done) / Math.Max(rate, 1e-9);
        int fill = (int)((long)Width * done / Math.Max(1, total));
        var line = $"[{new string('#', fill)}{new string('.', Width - fill)}] step {done}/{total}  {rate:F2} it/s  ETA {eta:F0}s";
        if (Console.IsErrorRedirected) Console.Error.WriteLine(line);
        else Console.Error.Write($"\r{line}   ");
    }

    public void Finish()
    {
        if (Quiet) return;
        if (!Console.IsErrorRedirected) Console.Error.WriteLine();
    }
}

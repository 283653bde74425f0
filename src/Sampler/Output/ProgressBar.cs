using System.Diagnostics;

namespace BlockDance.Sampler;

/// <summary>A one-line console progress bar on stderr: step, it/s, ETA.</summary>
public sealed class ProgressBar(int total)
{
    readonly Stopwatch sw = Stopwatch.StartNew();
    const int Width = 30;

    public void Update(int done)
    {
        double sec = sw.Elapsed.TotalSeconds, rate = done / Math.Max(sec, 1e-9);
        double eta = (total - done) / Math.Max(rate, 1e-9);
        int fill = (int)((long)Width * done / Math.Max(1, total));
        Console.Error.Write($"\r[{new string('#', fill)}{new string('.', Width - fill)}] step {done}/{total}  {rate:F2} it/s  ETA {eta:F0}s   ");
    }

    public void Finish() => Console.Error.WriteLine();
}

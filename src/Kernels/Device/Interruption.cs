// Stopping cleanly on SIGINT/SIGTERM. The signal handler (Sampler/Cli/Signals) only records the request;
// the code that can stop cleanly — the sampling loop at a step boundary, an output write before its
// rename — asks for it while it runs (Defer) and checks it (ThrowIfRequested). A signal that arrives
// while nothing defers, or a second signal, keeps its default action: the process ends at once, which
// is safe then because no temporary file exists outside a deferring write.
// A deferred signal must not wait forever: a region can be blocked where it never checks (loading a model
// inside an output group, decoding inputs inside a write). So a deferred request starts a grace timer; if the
// run has not stopped by then, the overdue action (Sampler/Cli/Signals: remove the temporary files, one line,
// exit 130/143) ends the process.
namespace BlockDance.Kernels;

/// <summary>The run was stopped by SIGINT (exit 130) or SIGTERM (exit 143) at a clean boundary.</summary>
public sealed class InterruptedException(string signal, int exitCode, string where)
    : Exception($"interrupted by {signal} {where}; nothing was written")
{
    public int ExitCode { get; } = exitCode;
}

public static class Interruption
{
    static int deferring;      // > 0 while some code will check at its next boundary
    static int requested;      // 0, or the exit code of the signal received (130, 143)
    static string signal = "";
    static Timer? grace;
    static Action<string, int>? overdue;

    /// <summary>How long a deferred signal waits for the run to reach a boundary before the overdue action ends it.</summary>
    public static TimeSpan Grace { get; set; } = TimeSpan.FromSeconds(5);   // well inside Slurm's 30 s between SIGTERM and SIGKILL

    /// <summary>What to do when a deferred signal was not honoured within Grace (the program: clean up and exit).</summary>
    public static void OnOverdue(Action<string, int> action) => overdue = action;

    /// <summary>True while a step loop or an output write will stop cleanly at its next boundary.</summary>
    public static bool Deferring => Volatile.Read(ref deferring) > 0;

    /// <summary>Records a signal. Returns true when it will be handled at the next boundary (the caller then cancels
    /// the default termination), false when nothing defers or a signal is already pending (terminate now).</summary>
    public static bool Request(string name, int exitCode)
    {
        if (!Deferring) return false;
        if (Interlocked.CompareExchange(ref requested, exitCode, 0) != 0) return false;   // the second signal
        signal = name;
        if (overdue != null) grace = new Timer(_ => Overdue(), null, Grace, Timeout.InfiniteTimeSpan);
        return true;
    }

    /// <summary>Marks a region that checks for a request at its boundaries (dispose to leave it).</summary>
    public static IDisposable Defer()
    {
        Interlocked.Increment(ref deferring);
        return new Region();
    }

    /// <summary>Throws InterruptedException if a signal was recorded; `where` says where the run stopped.</summary>
    public static void ThrowIfRequested(string where)
    {
        int code = Volatile.Read(ref requested);
        if (code == 0) return;
        grace?.Dispose();   // honoured at a boundary: the run unwinds and exits with the code itself
        grace = null;
        throw new InterruptedException(signal, code, where);
    }

    /// <summary>Forgets a recorded request (the start of a new command run in the same process, e.g. in tests).</summary>
    public static void Reset()
    {
        grace?.Dispose();
        grace = null;
        Volatile.Write(ref requested, 0);
    }

    static void Overdue()
    {
        int code = Volatile.Read(ref requested);
        if (code != 0 && grace != null) overdue?.Invoke(signal, code);
    }

    sealed class Region : IDisposable
    {
        int done;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref done, 1) == 0) Interlocked.Decrement(ref deferring);
        }
    }
}

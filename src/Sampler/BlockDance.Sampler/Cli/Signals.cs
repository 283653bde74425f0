// SIGINT (Ctrl-C) and SIGTERM for the blockdance program. While sampling or writing an output, the
// first signal is recorded (Kernels/Device/Interruption) and the run stops at the next step boundary or
// before the output's rename: temporary files are removed, nothing appears under an output name, and
// the program exits 130 (SIGINT) or 143 (SIGTERM), the shell's 128 + signal number. Outside those
// regions, or on a second signal, the default action ends the process at once. A region that does not reach its
// boundary within Interruption.Grace (blocked reading or loading) is ended then: temporaries removed, same exit code.
using System.Runtime.InteropServices;
using BlockDance.Kernels;

namespace BlockDance.Sampler.Cli;

public static class Signals
{
    static PosixSignalRegistration? sigint, sigterm;

    /// <summary>Installs the handlers (once per process) and forgets any earlier request.</summary>
    public static void Install()
    {
        Interruption.Reset();
        Interruption.OnOverdue(Overdue);
        if (sigint != null) return;
        sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => ctx.Cancel = Interruption.Request("SIGINT", 130));
        sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => ctx.Cancel = Interruption.Request("SIGTERM", 143));
    }

    /// <summary>A deferred signal the run did not honour within Interruption.Grace: remove the temporaries, one line, exit.</summary>
    static void Overdue(string name, int code)
    {
        AtomicFile.RemoveTemporaries();
        Console.Error.WriteLine($"error: interrupted by {name} inside a region that did not reach a clean boundary within " +
                                $"{Interruption.Grace.TotalSeconds:F0} s; temporary files removed, nothing was written");
        Environment.Exit(code);
    }
}

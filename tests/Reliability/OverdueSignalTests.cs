// A signal that arrives while the program is blocked inside an output-writing region (loading a model inside an
// output group, reading inputs inside a write) used to be deferred forever: only SIGKILL ended the process and
// .bd-*.tmp files stayed. Now the deferred request starts Interruption.Grace; when the region has not reached its
// boundary by then, the overdue action runs — in the program (Cli/Signals) it removes the temporary files, prints
// one line and exits 130/143. Tested in-process with a recording action in place of the exit.
using BlockDance.Kernels;
using BlockDance.Sampler;
using Xunit;

namespace BlockDance.Tests;

public class OverdueSignalTests
{
    [Fact]
    public void SignalWhileAWriteIsBlocked_RunsTheOverdueAction_AndRemovesTheTemporaryFile()
    {
        var dir = CliRunner.TempDir();
        var fired = new ManualResetEventSlim();
        var release = new ManualResetEventSlim();
        (string Name, int Code) got = default;
        var grace = Interruption.Grace;
        Interruption.Reset();
        Interruption.Grace = TimeSpan.FromMilliseconds(200);
        Interruption.OnOverdue((name, code) => { AtomicFile.RemoveTemporaries(); got = (name, code); fired.Set(); });
        try
        {
            var writer = Task.Run(() => AtomicFile.Write(Path.Combine(dir, "out.npz"), s =>
            {
                s.Write(new byte[1000]);
                Assert.True(Interruption.Request("SIGTERM", 143));   // deferred: the write region is open
                release.Wait(TimeSpan.FromSeconds(60));             // blocked: it never reaches its boundary by itself
            }));
            Assert.True(fired.Wait(TimeSpan.FromSeconds(30)), "the overdue action did not run");
            Assert.Equal(("SIGTERM", 143), got);
            Assert.Empty(Directory.GetFileSystemEntries(dir));       // the .bd-*.tmp file is gone while the write is still blocked
            release.Set();
            var e = Assert.Throws<AggregateException>(() => writer.Wait());
            Assert.IsType<InterruptedException>(e.InnerException);
            Assert.Empty(Directory.GetFileSystemEntries(dir));
        }
        finally
        {
            release.Set();
            Interruption.Grace = grace;
            BlockDance.Sampler.Cli.Signals.Install();   // the program's overdue action again, and no pending request
        }
    }

    [Fact]
    public void SignalHonouredAtABoundary_NeverRunsTheOverdueAction()
    {
        var ran = false;
        var grace = Interruption.Grace;
        Interruption.Reset();
        Interruption.Grace = TimeSpan.FromMilliseconds(50);
        Interruption.OnOverdue((_, _) => ran = true);
        try
        {
            using (Interruption.Defer())
            {
                Assert.True(Interruption.Request("SIGINT", 130));
                Assert.Throws<InterruptedException>(() => Interruption.ThrowIfRequested("after step 1"));
            }
            Thread.Sleep(300);   // past the grace: the timer was cancelled when the request was honoured
            Assert.False(ran);
        }
        finally
        {
            Interruption.Grace = grace;
            BlockDance.Sampler.Cli.Signals.Install();
        }
    }
}

// SIGINT/SIGTERM: the run stops at the next step boundary or before an output's rename, removes its
// temporary files and exits 130/143; nothing appears in the output folder. The write window (where a
// signal used to leave ".tmp-<guid>" files behind) is tested in-process by recording a signal while the
// bytes are being written; the whole program is tested with real signals on a child process.
using System.Diagnostics;
using System.Runtime.InteropServices;
using BlockDance.Kernels;
using BlockDance.Sampler;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class SignalTests(ITestOutputHelper output)
{
    [DllImport("libc", SetLastError = true)]
    static extern int kill(int pid, int sig);

    [Fact]
    public void SignalDuringTheFinalWrite_RemovesTheTemporaryFile_AndWritesNothing()
    {
        Interruption.Reset();
        var dir = CliRunner.TempDir();
        var e = Assert.Throws<InterruptedException>(() => AtomicFile.Write(Path.Combine(dir, "x.png"), s =>
        {
            s.Write(new byte[1000]);
            Assert.True(Interruption.Request("SIGTERM", 143));   // deferred: the write region is open
        }));
        Assert.Equal(143, e.ExitCode);
        Assert.Empty(Directory.GetFileSystemEntries(dir));
        Interruption.Reset();
    }

    [Fact]
    public void SignalBetweenGroupedOutputs_WritesNeither()
    {
        Interruption.Reset();
        var dir = CliRunner.TempDir();
        var e = Assert.Throws<InterruptedException>(() =>
        {
            using var group = AtomicFile.BeginGroup();
            AtomicFile.Write(Path.Combine(dir, "x.png"), s => s.WriteByte(1));
            Assert.True(Interruption.Request("SIGINT", 130));
            AtomicFile.Write(Path.Combine(dir, "r.json"), s => s.WriteByte(2));
            group.Commit();
        });
        Assert.Equal(130, e.ExitCode);
        Assert.Empty(Directory.GetFileSystemEntries(dir));
        Interruption.Reset();
    }

    [Fact]
    public void SignalOutsideADeferringRegion_KeepsItsDefaultAction()
    {
        Interruption.Reset();
        Assert.False(Interruption.Request("SIGINT", 130));   // nothing would check it: the process should just end
        using (Interruption.Defer())
        {
            Assert.True(Interruption.Request("SIGINT", 130));
            Assert.False(Interruption.Request("SIGINT", 130));   // a second signal ends the process at once
        }
        Interruption.Reset();
    }

    [SkippableTheory]
    [InlineData(2, 130, "SIGINT")]
    [InlineData(15, 143, "SIGTERM")]
    public void RealSignalDuringSampling_StopsAtAStepBoundary_ExitsWithTheSignalCode(int signal, int exitCode, string name)
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "POSIX signals to a child process: Linux");
        var exe = Path.Combine(AppContext.BaseDirectory, "blockdance");
        Skip.IfNot(File.Exists(exe), "the blockdance program is not next to the tests");
        var dir = CliRunner.TempDir();
        // The 2-block fixture model, 100 steps: the progress line at 10% (step 10, stderr redirected) proves that
        // sampling is under way, and 90 steps remain when the signal arrives.
        var psi = new ProcessStartInfo(exe, ["sample", "--model", CliRunner.Fixture("dit_p4.weights.safetensors"), "--device", "cpu", "--steps", "100",
            "--class", "0,1", "--out", Path.Combine(dir, "x.png"), "--report", Path.Combine(dir, "r.json")])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var log = new System.Text.StringBuilder();
        string? line;
        while ((line = p.StandardError.ReadLine()) != null)
        {
            log.AppendLine(line);
            if (line.Contains("] step ")) break;
        }
        Assert.True(line != null, $"no progress line: {log}");
        Assert.Equal(0, kill(p.Id, signal));
        var err = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(60_000), "the program did not stop after the signal");
        output.WriteLine(log + err.Result);
        Assert.Equal(exitCode, p.ExitCode);
        Assert.Contains($"interrupted by {name} after step", err.Result);
        Assert.DoesNotContain("   at ", err.Result);
        Assert.Empty(Directory.GetFileSystemEntries(dir));   // no image, no report, no temporary file
    }
}

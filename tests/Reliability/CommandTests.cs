// Careless commands (the examples): options that held NaN or impossible values, outputs that were
// clobbered or failed only after sampling, inputs that hung, and commands that treated stray arguments
// differently. Each is now one error line with exit 2 before any sampling, and nothing is written.
using System.Runtime.InteropServices;
using BlockDance.Sampler;
using BlockDance.Sampler.Cli;
using BlockDance.Transformer;
using Xunit;

namespace BlockDance.Tests;

public class CommandTests
{
    static readonly string P4 = CliRunner.Fixture("dit_p4.weights.safetensors");   // 3-channel pixel model, 2 blocks

    [DllImport("libc", SetLastError = true)]
    static extern int mkfifo(string path, uint mode);

    public static TheoryData<string[], string> BadOptions => new()
    {
        { ["--cache", "blockdance", "--cache-window", "NaN,0.5"], "--cache-window: expected a finite number, found 'NaN' in 'NaN,0.5'" },
        { ["--cache", "blockdance", "--cache-window", "0.2,Infinity"], "--cache-window: expected a finite number, found 'Infinity'" },
        { ["--cache", "blockdance", "--cache-n", "100000", "--steps", "2"], "--cache-n: expected N ≤ --steps (2), found 100000" },
        { ["--eta", "NaN"], "--eta: expected a finite number, found 'NaN'" },
        { ["stray"], "sample: unexpected argument 'stray'" },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void BadOption_IsOneLineError_NoOutput(string[] extra, string expected)
    {
        var dir = CliRunner.TempDir();
        var (code, _, err) = CliRunner.Run(["sample", "--model", P4, "--steps", "2", "--out", Path.Combine(dir, "x.png"), .. extra]);
        HostileFiles.AssertOneLineError(code, err, expected);
        Assert.Empty(Directory.GetFiles(dir));
    }

    public static TheoryData<string[], string> StrayArguments => new()
    {
        { ["selftest", "pos"], "selftest: unexpected argument 'pos'" },
        { ["sample", "pos"], "sample: unexpected argument 'pos'" },
        { ["analyze", "pos"], "analyze: unexpected argument 'pos'" },
        { ["eval", "pos"], "eval: unexpected argument 'pos'" },
        { ["bench", "pos"], "bench: unexpected argument 'pos'" },
        { ["train-ada", "pos"], "train-ada: unexpected argument 'pos'" },
        { ["inspect", "a.safetensors", "pos"], "inspect: unexpected argument 'pos'" },
    };

    [Theory]
    [MemberData(nameof(StrayArguments))]
    public void EveryCommand_RejectsStrayArguments_TheSameWay(string[] args, string expected)
    {
        var (code, _, err) = CliRunner.Run(args);
        HostileFiles.AssertOneLineError(code, err, expected);
    }

    [Fact]
    public void InconsistentOptions_AreRejected()
    {
        var (code, _, err) = CliRunner.Run("bench", "--preset", "S/2", "--model", P4);
        HostileFiles.AssertOneLineError(code, err, "bench: expected either --model FILE or --preset NAME (random weights), found both");
        (code, _, err) = CliRunner.Run("inspect", HostileFiles.DemoModel, "--heads", "5");
        HostileFiles.AssertOneLineError(code, err, "--heads: expected a positive divisor of the hidden size D = 96, found 5");
        foreach (var rho in new[] { "0", "1" })
        {
            (code, _, err) = CliRunner.Run("train-ada", "--model", HostileFiles.DemoModel, "--rho", rho, "--out", Path.Combine(CliRunner.TempDir(), "p.safetensors"));
            HostileFiles.AssertOneLineError(code, err, "--rho: expected a fraction in (0, 1)");
        }
    }

    [Fact]
    public void ShippedAdaPolicy_IsFound_OutsideTheRepository()
    {
        var old = Directory.GetCurrentDirectory();
        try
        {
            Directory.SetCurrentDirectory(CliRunner.TempDir());   // as the default model: working folder, then program folder, upwards
            var cfg = new DiTConfig(6, 96, 4, 2, 1, 2, 14, 10);
            var (_, path) = CommonOptions.AdaPolicyFile(null, cfg, 50);
            Assert.Equal(HostileFiles.Shipped(CommonOptions.DefaultAdaPolicy), path);
        }
        finally { Directory.SetCurrentDirectory(old); }
    }

    [SkippableFact]
    public async Task FifoAsModel_IsRejected_WithoutOpeningIt()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "FIFO check: Linux only");
        var dir = CliRunner.TempDir();
        var fifo = Path.Combine(dir, "model.safetensors");
        Assert.Equal(0, mkfifo(fifo, Convert.ToUInt32("600", 8)));
        // Opening a FIFO for reading blocks until a writer comes: run it on a task so a regression fails, not hangs.
        foreach (var (args, expected) in new (string[], string)[]
        {
            (["sample", "--model", fifo, "--out", Path.Combine(dir, "x.png")], "model file: expected a regular file, found a FIFO (named pipe)"),
            (["sample", "--model", HostileFiles.DemoModel, "--cache", "ada", "--policy", fifo, "--out", Path.Combine(dir, "y.png")],
                "--policy: expected a regular file, found a FIFO (named pipe)"),
        })
        {
            var run = Task.Run(() => CliRunner.Run(args));
            Assert.True(await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(30))) == run, $"{string.Join(' ', args)}: blocked on a FIFO");
            var (code, _, err) = await run;
            HostileFiles.AssertOneLineError(code, err, expected);
        }
    }

    [Fact]
    public void ReportEqualToOut_IsRejected_AndTheImageIsKept()
    {
        var dir = CliRunner.TempDir();
        var png = Path.Combine(dir, "x.png");
        File.WriteAllBytes(png, [1, 2, 3]);
        var (code, _, err) = CliRunner.Run("sample", "--model", P4, "--steps", "1", "--out", png, "--report", Path.Combine(dir, ".", "x.png"));
        HostileFiles.AssertOneLineError(code, err, "expected a different file than --out");
        Assert.Equal([1, 2, 3], File.ReadAllBytes(png));
    }

    [Fact]
    public void OutputNameNearTheLimit_IsWritten_AndOneByteOver_FailsBeforeSampling()
    {
        var dir = CliRunner.TempDir();
        var longest = Path.Combine(dir, new string('a', AtomicFile.NameMax - 4) + ".png");   // 255 bytes: legal
        var (code, _, err) = CliRunner.Run("sample", "--model", P4, "--device", "cpu", "--steps", "1", "--class", "0", "--out", longest);
        Assert.True(code == 0, err);
        Assert.Equal([longest], Directory.GetFiles(dir));

        var over = Path.Combine(dir, new string('b', AtomicFile.NameMax - 3) + ".png");      // 256 bytes
        string stdout;
        (code, stdout, err) = CliRunner.Run("sample", "--model", P4, "--steps", "1", "--out", over);
        HostileFiles.AssertOneLineError(code, err, "expected a file name of at most 255 bytes, found 256 bytes");
        Assert.DoesNotContain("device:", stdout);
    }

    [SkippableFact]
    public void OutputSymlink_IsFollowed_AndDeviceNode_IsRefused()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "symbolic links and /dev/null: Linux");
        var dir = CliRunner.TempDir();
        var target = Path.Combine(dir, "target.png");
        File.WriteAllBytes(target, [9]);
        var link = Path.Combine(dir, "link.png");
        File.CreateSymbolicLink(link, target);
        var (code, _, err) = CliRunner.Run("sample", "--model", P4, "--device", "cpu", "--steps", "1", "--class", "0", "--out", link);
        Assert.True(code == 0, err);
        Assert.NotNull(new FileInfo(link).LinkTarget);                          // still a link
        Assert.Equal(0x89, File.ReadAllBytes(target)[0]);                       // its target holds the PNG
        Assert.Equal(2, Directory.GetFileSystemEntries(dir).Length);

        var toDevice = Path.Combine(dir, "null.png");
        File.CreateSymbolicLink(toDevice, "/dev/null");
        (code, _, err) = CliRunner.Run("sample", "--model", P4, "--steps", "1", "--out", toDevice);
        HostileFiles.AssertOneLineError(code, err, "expected a regular file or a new name, found a character device");
    }
}

// The options are declared once (Cli/Opts.cs, Cli/CommandTable.cs) and parsing, --help, the usage, the
// README's CLI block and the shell completions read that one declaration: each check here fails when
// one of them drifts from it.
using System.Reflection;
using BlockDance.Kernels;
using BlockDance.Sampler;
using BlockDance.Sampler.Cli;
using Xunit;

namespace BlockDance.Tests;

public class CliDeclarationTests
{
    static IEnumerable<Opt> Declared() =>
        typeof(Opts).GetFields(BindingFlags.Public | BindingFlags.Static)
            .SelectMany(f => f.GetValue(null) switch { Opt o => [o], Opt[] a => a, _ => Array.Empty<Opt>() });

    [Fact]
    public void EveryDeclaration_HasHelp_AndDefaultsOfItsType()
    {
        foreach (var o in Declared())
        {
            Assert.False(string.IsNullOrWhiteSpace(o.Help), o.Flag);
            var t = o.GetType().BaseType!;
            if (!t.IsGenericType) continue;
            var valueType = t.GetGenericArguments()[0];
            foreach (var d in new[] { o.Default, o.PixArtDefault, o.STDiTDefault })
                if (d != null) Assert.True(valueType.IsInstanceOfType(d), $"{o.Flag}: default {d} is a {d.GetType().Name}, expected {valueType.Name}");
        }
    }

    [Fact]
    public void EveryCommand_HelpListsEachDeclaredOption_WithText()
    {
        foreach (var spec in CommandTable.All)
        {
            var help = OptionHelp.For(spec, null);
            foreach (var o in spec.Options) Assert.Contains($"  {o.Flag}", help);
            Assert.DoesNotContain("VALUE", help);
            Assert.Equal(spec.Options.Length, spec.Options.Select(o => o.Name).Distinct().Count());
        }
    }

    [Fact]
    public void SampleHelp_ListsEverySamplerAndCacheMethod_AndShard()
    {
        var (code, stdout, _) = CliRunner.Run("sample", "--help");
        Assert.Equal(0, code);
        Assert.Contains("--sampler ddim|ddpm|dpm++2m", stdout);
        foreach (var m in CacheSpec.Methods) Assert.Contains(m.Name == "bd" ? "bd<N>" : m.Name, stdout);
        Assert.Contains("--prompt TEXT", stdout);
        Assert.Contains("[PixArt-α only]", stdout);
        Assert.Contains("with --out-dir (blockdance sample --out-dir DIR", stdout);
        Assert.Contains("--shard i/n", stdout);
        (code, stdout, _) = CliRunner.Run("sample", "--out-dir", "x", "--help");
        Assert.Contains("--shard i/n", stdout);
    }

    [Fact]
    public void SampleHelp_ForAPixArtFolder_ShowsItsDefaults_AndOnlyItsOptions()
    {
        var (code, stdout, _) = CliRunner.Run("sample", "--model", CliRunner.Fixture("pixart_tiny"), "--help");
        Assert.Equal(0, code);
        Assert.Contains("options (for a PixArt-α model)", stdout);
        Assert.Contains("sampling steps, 1..1000 (default 20)", stdout);
        Assert.Contains("(default dpm++2m)", stdout);
        Assert.Contains("1 = off (default 4.5)", stdout);
        Assert.Contains("(default 0.4,0.95)", stdout);
        Assert.DoesNotContain("\n  --class ", stdout);
        Assert.DoesNotContain("\n  --cfg-channels ", stdout);
        (_, stdout, _) = CliRunner.Run("sample", "--model", CliRunner.Fixture("dit_p4.weights.safetensors"), "--help");
        Assert.Contains("sampling steps, 1..1000 (default 50)", stdout);
        Assert.DoesNotContain("\n  --prompt ", stdout);
    }

    [Fact]
    public void SampleHelp_ForAnSTDiT_ShowsOpenSorasDefaults_AndTheVideoOptionsOnlyThere()
    {
        var (code, stdout, _) = CliRunner.Run("sample", "--model", CliRunner.Fixture("stdit_tiny"), "--help");
        Assert.Equal(0, code);
        Assert.Contains("options (for a STDiT model)", stdout);
        Assert.Contains("sampling steps, 1..1000 (default 100)", stdout);
        Assert.Contains("(default ddpm)", stdout);
        Assert.Contains("1 = off (default 7)", stdout);
        Assert.Contains("or all (default official)", stdout);
        Assert.Contains("(default 0.25,0.95)", stdout);
        foreach (var video in new[] { "--frames", "--fps", "--space-scale", "--time-scale", "--step-noise", "--prompt-embeds" })
            Assert.Contains($"\n  {video} ", stdout);
        Assert.DoesNotContain("\n  --class ", stdout);
        Assert.DoesNotContain("\n  --negative ", stdout);
        foreach (var model in new[] { "pixart_tiny", "dit_p4.weights.safetensors" })
        {
            (_, stdout, _) = CliRunner.Run("sample", "--model", CliRunner.Fixture(model), "--help");
            Assert.DoesNotContain("\n  --frames ", stdout);
            Assert.DoesNotContain("\n  --fps ", stdout);
        }
        // the defaults the help states are the ones the run reads (Args.ForModel)
        Assert.Equal(100, BlockDance.Sampling.STDiTPipeline.DefaultOptions.Steps);
        Assert.Equal(100, Opts.Steps.DefaultValue(ModelKind.STDiT));
        Assert.Equal(SamplerKind.Ddpm, Opts.Sampler.DefaultValue(ModelKind.STDiT));
        Assert.Equal(7.0, Opts.Cfg.DefaultValue(ModelKind.STDiT));
    }

    [Fact]
    public void Readme_CliBlock_IsTheProgramsUsage()
    {
        var readme = File.ReadAllText(HostileFiles.Shipped("README.md"));
        Assert.Contains("```\n" + Program.Usage + "\n```", readme);
    }

    [Fact]
    public void RepeatedOption_LastOneWins_AsBefore()
    {
        var a = Args.Parse("sample", ["--steps", "3", "--steps", "7"]);
        Assert.Equal(7, a.GetInt("steps"));
        var none = Args.Parse("sample", []);
        Assert.Equal(50, none.GetInt("steps"));                                  // the declared defaults, per model kind
        Assert.Equal(20, none.ForModel(ModelKind.PixArt).GetInt("steps"));
        Assert.Equal(4.5, none.ForModel(ModelKind.PixArt).GetDouble("cfg"));
    }

    [Theory]
    [InlineData(new[] { "sample", "--quick" }, "sample: unknown option '--quick'")]
    [InlineData(new[] { "sample", "--steps" }, "sample: option '--steps' expects a value")]
    [InlineData(new[] { "sample", "--sampler", "euler" }, "--sampler: expected ddim or ddpm or dpm++2m, found 'euler'")]
    [InlineData(new[] { "sample", "--steps", "0" }, "--steps: expected 1..1000, found 0")]
    [InlineData(new[] { "smaple" }, "unknown command 'smaple' (did you mean 'sample'?)")]
    [InlineData(new[] { "completions", "fish" }, "completions: expected bash or zsh, found 'fish'")]
    public void BadInput_IsOneLine_Exit2(string[] args, string expected)
    {
        var (code, _, err) = CliRunner.Run(args);
        HostileFiles.AssertOneLineError(code, err, expected);
    }

    [Fact]
    public void Suggest_CompletesCommandsOptionsAndChoices()
    {
        static string Suggest(string line) => CliRunner.Run($"[suggest:{line.Length}]", line).Out;
        Assert.Contains("sample", Suggest("blockdance sa"));
        Assert.Contains("--sampler", Suggest("blockdance sample --sam"));
        var samplers = Suggest("blockdance sample --sampler ");
        foreach (var s in new[] { "ddim", "ddpm", "dpm++2m" }) Assert.Contains(s, samplers);
        Assert.Contains("teacache", Suggest("blockdance sample --cache "));
        Assert.Contains("sim", Suggest("blockdance selftest --device "));
        var (code, script, _) = CliRunner.Run("completions", "bash");
        Assert.Equal(0, code);
        Assert.Contains("complete -o default -F _blockdance_complete blockdance", script);
        Assert.Contains("[suggest:${COMP_POINT}]", script);
    }

    [Fact]
    public void CoreError_NamingAField_IsReportedUnderTheFlag()
    {
        var e = new InvalidValueException("guidance scale", "≥ 1", "0.5");
        Assert.Equal("--cfg (guidance scale): expected ≥ 1, found 0.5", FlagErrors.Attribute("sample", e)!.Message);
        Assert.Null(FlagErrors.Attribute("inspect", e));   // inspect has no --cfg: the message stays the core's
        var noise = new ModelExceptionWithField("n.safetensors: tensor 'noise': expected shape [2, 3, 8, 8], found [1, 3, 8, 8]") { Field = "noise" };
        Assert.Equal("--noise: n.safetensors: tensor 'noise': expected shape [2, 3, 8, 8], found [1, 3, 8, 8]", FlagErrors.Attribute("sample", noise)!.Message);
        var shapes = new InvalidValueException("shapes", "small or xl", "'huge'");
        Assert.Equal("--shapes: expected small or xl, found 'huge'", FlagErrors.Attribute("kernels", shapes)!.Message);
        Assert.Null(FlagErrors.Attribute("sample", new UsageException("--cfg: already a flag") { Field = "guidance scale" }));
    }

    sealed class ModelExceptionWithField(string message) : InputException(message);
}

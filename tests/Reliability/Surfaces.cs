// Copies of the tiny fixtures to break, for the per-surface reliability tests: a full PixArt-α folder (transformer/,
// vae/, scheduler/, model_index.json from pixart_tiny; text_encoder/ and tokenizer/ from t5_tiny), JSON edits of its
// configs, and the one run per surface that reads them (sample with --prompt-embeds, encode, decode through the VAE).
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;

namespace BlockDance.Tests;

public static class Surfaces
{
    public static string PixArtEmbeds => CliRunner.Fixture("pixart_traj.safetensors");

    /// <summary>A fresh copy of the tiny PixArt folder with the tiny T5 inside; returns the folder.</summary>
    public static string PixArtFolder(string dir, bool withT5 = false)
    {
        var m = Path.Combine(dir, "model");
        Copy(CliRunner.Fixture("pixart_tiny"), m);
        if (withT5)
        {
            Copy(CliRunner.Fixture("t5_tiny/text_encoder"), Path.Combine(m, "text_encoder"));
            Copy(CliRunner.Fixture("t5_tiny/tokenizer"), Path.Combine(m, "tokenizer"));
        }
        return m;
    }

    public static void Copy(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)), overwrite: true);
        foreach (var d in Directory.GetDirectories(from)) Copy(d, Path.Combine(to, Path.GetFileName(d)));
    }

    /// <summary>Rewrites a JSON config in place.</summary>
    public static void EditJson(string path, Action<JsonObject> edit)
    {
        var o = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(o);
        File.WriteAllText(path, o.ToJsonString());
    }

    /// <summary>`sample` on a PixArt folder from the fixture's prompt features: one step, the cheapest full run (transformer + VAE).</summary>
    public static (int Code, string Out, string Err) SamplePixArt(string model, string png, params string[] extra) =>
        CliRunner.Run(["sample", "--model", model, "--prompt-embeds", PixArtEmbeds, "--steps", "1", "--device", "cpu", "--out", png, .. extra]);

    [DllImport("libc", SetLastError = true)]
    static extern int mkfifo(string path, uint mode);

    /// <summary>Replaces `path` with a FIFO (named pipe) nobody writes to: opening it for reading would block forever.</summary>
    public static void MakeFifo(string path)
    {
        if (File.Exists(path)) File.Delete(path);
        if (mkfifo(path, 0x1B6) != 0) throw new IOException($"mkfifo {path} failed ({Marshal.GetLastWin32Error()})");
    }

    /// <summary>Replaces `path` with a symbolic link to /dev/zero (a character device that never ends).</summary>
    public static void DevZero(string path)
    {
        if (File.Exists(path)) File.Delete(path);
        File.CreateSymbolicLink(path, "/dev/zero");
    }

    /// <summary>Runs `run` with a deadline, so that a hang fails the test instead of stalling the suite.</summary>
    public static (int Code, string Out, string Err) Within(int seconds, Func<(int, string, string)> run, string what)
    {
        var t = Task.Run(run);
        if (!t.Wait(TimeSpan.FromSeconds(seconds))) throw new Xunit.Sdk.XunitException($"{what}: no answer in {seconds} s (a hang)");
        return t.Result;
    }
}

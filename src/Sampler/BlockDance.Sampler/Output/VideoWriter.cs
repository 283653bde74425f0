// Decoded video frames → files, by the --out name:
//   x.png    one animated PNG (Apng) per run: the samples side by side in each frame, fps from --fps
//   dir/     (a name ending in / or an existing folder) one PNG per sample and frame: sample{i}_frame{t}.png
//   x.mp4    H.264 yuv420p crf 23 through an ffmpeg on PATH (the official Open-Sora 1.0 settings), fed raw RGB on stdin;
//            without ffmpeg: one line naming the missing program
// Frames come as pixels (N, T, 3, H, W) in [0, 255] (the VAE decoder's output, frame by frame).
using System.Diagnostics;
using BlockDance.Kernels;
using BlockDance.Sampler.Cli;
using StbImageWriteSharp;

namespace BlockDance.Sampler;

public static class VideoWriter
{
    public enum Kind { Apng, Folder, Mp4 }

    /// <summary>What --out asks for, or null when it is no video output (.safetensors latents are written elsewhere).</summary>
    public static Kind? KindOf(string path) =>
        path.EndsWith('/') || path.EndsWith(Path.DirectorySeparatorChar) || Directory.Exists(path) ? Kind.Folder
        : path.EndsWith(".png", StringComparison.OrdinalIgnoreCase) ? Kind.Apng
        : path.EndsWith(".mp4", StringComparison.OrdinalIgnoreCase) ? Kind.Mp4 : null;

    /// <summary>Checks, before any sampling, that the output can be written (ffmpeg on PATH for .mp4).</summary>
    public static void Preflight(string path, string? searchPath = null)
    {
        if (KindOf(path) == Kind.Mp4 && FindOnPath("ffmpeg", searchPath) is null)
            throw new UsageException($"--out {path}: an .mp4 needs the program 'ffmpeg' on PATH (Debian: apt-get install ffmpeg), found none; or write --out clip.png (animated PNG)");
    }

    /// <summary>The program's path in the folders of searchPath (default: $PATH), or null.</summary>
    public static string? FindOnPath(string program, string? searchPath = null) =>
        (searchPath ?? Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);

    /// <summary>RGB bytes (H·W·3) of frame t of every sample side by side (2-px white gaps).</summary>
    static (byte[] Rgb, int Width) Strip(float[] px, int n, int frames, int h, int w, int t)
    {
        int gap = n > 1 ? 2 : 0, width = n * w + (n - 1) * gap;
        var rgb = new byte[(long)width * h * 3];
        Array.Fill(rgb, (byte)255);
        for (int i = 0; i < n; i++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    for (int c = 0; c < 3; c++)
                        rgb[((long)y * width + i * (w + gap) + x) * 3 + c] =
                            ImageGrid.ToByte(px[((((long)i * frames + t) * 3 + c) * h + y) * w + x], 0f, 255f);
        return (rgb, width);
    }

    /// <summary>Writes pixels (n, frames, 3, h, w) in [0, 255]; returns a one-line description of what was written.</summary>
    public static string Write(string path, float[] px, int n, int frames, int h, int w, int fps)
    {
        switch (KindOf(path))
        {
            case Kind.Apng:
            {
                var strips = Enumerable.Range(0, frames).Select(t => Strip(px, n, frames, h, w, t)).ToArray();
                AtomicFile.Write(path, s => Apng.Write(s, strips.Select(f => f.Rgb).ToArray(), strips[0].Width, h, fps));
                return $"wrote {path}: animated PNG, {frames} frames of {n} sample(s) {w}×{h} at {fps} fps";
            }
            case Kind.Folder:
            {
                Directory.CreateDirectory(path);
                for (int i = 0; i < n; i++)
                    for (int t = 0; t < frames; t++)
                    {
                        var (rgb, width) = Strip(px[(int)((long)i * frames * 3 * h * w)..(int)((long)(i + 1) * frames * 3 * h * w)], 1, frames, h, w, t);
                        AtomicFile.Write(Path.Combine(path, $"sample{i}_frame{t:D3}.png"), s => new ImageWriter().WritePng(rgb, width, h, ColorComponents.RedGreenBlue, s));
                    }
                return $"wrote {path}: {n * frames} PNGs (sample{{i}}_frame{{t}}.png), {w}×{h}";
            }
            case Kind.Mp4:
                WriteMp4(path, Enumerable.Range(0, frames).Select(t => Strip(px, n, frames, h, w, t)).ToArray(), h, fps);
                return $"wrote {path}: H.264 yuv420p crf 23, {frames} frames of {n} sample(s) {w}×{h} at {fps} fps (ffmpeg)";
            default:
                throw new UsageException($"--out {path}: expected a video output (.png animated, .mp4, a folder/ for PNG frames) or .safetensors latents");
        }
    }

    static void WriteMp4(string path, (byte[] Rgb, int Width)[] frames, int h, int fps)
    {
        var ffmpeg = FindOnPath("ffmpeg") ?? throw new UsageException($"--out {path}: an .mp4 needs the program 'ffmpeg' on PATH, found none");
        int width = frames[0].Width, evenW = width & ~1, evenH = h & ~1;    // yuv420p needs even sides: crop one pixel if odd
        var tmp = AtomicFile.Target(path) + ".part.mp4";
        var psi = new ProcessStartInfo(ffmpeg) { RedirectStandardInput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", $"{width}x{h}", "-r", $"{fps}", "-i", "-",
                                    "-vf", $"crop={Math.Max(evenW, 2)}:{Math.Max(evenH, 2)}:0:0", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "23", tmp })
            psi.ArgumentList.Add(arg);
        using var p = Process.Start(psi) ?? throw new UsageException($"--out {path}: could not start {ffmpeg}");
        var err = p.StandardError.ReadToEndAsync();
        try
        {
            foreach (var f in frames) p.StandardInput.BaseStream.Write(f.Rgb);
            p.StandardInput.Close();
        }
        catch (IOException) { }
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            File.Delete(tmp);
            throw new UsageException($"--out {path}: ffmpeg exited with {p.ExitCode}: {err.Result.Split('\n').FirstOrDefault(l => l.Length > 0) ?? "no message"}");
        }
        File.Move(tmp, path, overwrite: true);
    }
}

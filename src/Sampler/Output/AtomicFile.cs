namespace BlockDance.Sampler;

/// <summary>Writes files so that a failure never leaves a partial file under the requested name:
/// write a temporary file in the same folder, then rename over the target.</summary>
public static class AtomicFile
{
    /// <summary>Fails early (before any sampling) if the output folder is missing or not writable.</summary>
    public static void CheckWritable(string path, string option)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        if (Directory.Exists(full))
            throw new Cli.UsageException($"{option} {path}: is a folder; expected a file name");
        if (!Directory.Exists(dir))
            throw new Cli.UsageException($"{option} {path}: output folder '{dir}' does not exist");
        var probe = Path.Combine(dir, $".blockdance-probe-{Guid.NewGuid():N}");
        try { File.WriteAllBytes(probe, []); File.Delete(probe); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new Cli.UsageException($"{option} {path}: output folder '{dir}' is not writable ({e.Message})");
        }
    }

    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var tmp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            {
                write(fs);
                fs.Flush(true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }
}

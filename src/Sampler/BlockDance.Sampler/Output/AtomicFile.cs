// Output files: checked before any work, written so that nothing partial ever appears under a requested name.
//   CheckWritable  before sampling: the name fits NAME_MAX (255 bytes, with the fixed-length temporary name
//                  too), the folder exists and is writable, the path is not a folder, FIFO, socket or device.
//                  A symbolic link is FOLLOWED: its final target is what gets written, the link stays.
//   CheckDistinct  two options never name the same file (--report equal to --out would overwrite the image).
//   Write          writes ".bd-<guid>.tmp" in the target's folder, flushes it to disk, and renames it over the
//                  target. Inside a Group the renames wait for Group.Commit, so a command's outputs appear
//                  together or not at all. A SIGINT/SIGTERM during the write is deferred (Interruption) and
//                  honoured before the rename: the temporary file is deleted and nothing is written.
using System.Text;
using BlockDance.Kernels;
using BlockDance.Sampler.Cli;
using BlockDance.Transformer.IO;

namespace BlockDance.Sampler;

public static class AtomicFile
{
    /// <summary>Longest file name in bytes on Linux file systems (NAME_MAX).</summary>
    public const int NameMax = 255;

    [ThreadStatic] static Group? current;
    /// <summary>Every temporary file that exists now (any thread), for the signal path that cannot unwind (RemoveTemporaries).</summary>
    static readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> temporaries = new();

    /// <summary>Deletes every temporary file still on disk: the overdue-signal path (Cli/Signals), which exits without unwinding.</summary>
    public static void RemoveTemporaries()
    {
        foreach (var t in temporaries.Keys)
            try { File.Delete(t); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        temporaries.Clear();
    }

    /// <summary>The temporary name: fixed length, so it fits whenever the target's name does.</summary>
    static string TempPath(string target) => Path.Combine(Path.GetDirectoryName(target)!, $".bd-{Guid.NewGuid():N}.tmp");

    /// <summary>The file a write to `path` replaces: the path itself, or a symbolic link's final target.</summary>
    public static string Target(string path)
    {
        var full = Path.GetFullPath(path);
        try
        {
            var info = new FileInfo(full);
            if (info.LinkTarget != null && info.ResolveLinkTarget(returnFinalTarget: true) is { } t) return Path.GetFullPath(t.FullName);
        }
        catch (IOException e)
        {
            throw new UsageException($"{path}: expected a file name or a symbolic link to one, found a link that cannot be resolved ({e.Message})");
        }
        return full;
    }

    /// <summary>Fails early (before any sampling) when the output cannot be written under that name.</summary>
    public static void CheckWritable(string path, string option)
    {
        if (path.Length == 0) throw new UsageException($"{option}: expected a file name, found an empty string");
        var full = Target(path);
        var name = Path.GetFileName(full);
        int bytes = Encoding.UTF8.GetByteCount(name);
        if (bytes > NameMax)
            throw new UsageException($"{option} {path}: expected a file name of at most {NameMax} bytes, found {bytes} bytes");
        var kind = FileKind.Of(full);
        if (kind == PathKind.Directory)
            throw new UsageException($"{option} {path}: is a folder; expected a file name");
        if (kind is not (PathKind.Missing or PathKind.Regular or PathKind.Unknown))
            throw new UsageException($"{option} {path}: expected a regular file or a new name, found {FileKind.Describe(kind)}");
        var dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir))
            throw new UsageException($"{option} {path}: output folder '{dir}' does not exist");
        var probe = TempPath(full);
        try { File.WriteAllBytes(probe, []); File.Delete(probe); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"{option} {path}: output folder '{dir}' is not writable ({e.Message})");
        }
        if (full != Path.GetFullPath(path)) Log.Info($"{option} {path} is a symbolic link: its target {full} will be written");
    }

    /// <summary>Two outputs of one command must be different files (after following symbolic links).</summary>
    public static void CheckDistinct(params (string Option, string? Path)[] outputs)
    {
        var given = outputs.Where(o => o.Path != null).Select(o => (o.Option, o.Path, Full: Target(o.Path!))).ToList();
        for (int i = 0; i < given.Count; i++)
            for (int j = i + 1; j < given.Count; j++)
                if (given[i].Full == given[j].Full)
                    throw new UsageException($"{given[j].Option} {given[j].Path}: expected a different file than {given[i].Option} {given[i].Path}, " +
                                             $"found the same file {given[i].Full}");
    }

    /// <summary>An output must not replace a file the run reads: a file that exists inside the model folder `inputs`
    /// (e.g. encode --out naming one of text_encoder/'s weight shards), after following symbolic links.</summary>
    public static void CheckNotInput(string path, string option, string inputs, string what)
    {
        var target = Target(path);
        if (!File.Exists(target) || !Directory.Exists(inputs)) return;
        var root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(inputs)) + Path.DirectorySeparatorChar;
        var real = Directory.ResolveLinkTarget(Path.TrimEndingDirectorySeparator(Path.GetFullPath(inputs)), returnFinalTarget: true) is { } l
            ? Path.TrimEndingDirectorySeparator(l.FullName) + Path.DirectorySeparatorChar : root;
        if (target.StartsWith(root, StringComparison.Ordinal) || target.StartsWith(real, StringComparison.Ordinal))
            throw new UsageException($"{option} {path}: expected a new file or one outside {what} {inputs}, found {target}, one of its own files");
    }

    public static void Write(string path, Action<Stream> write)
    {
        var target = Target(path);
        string? tmp = TempPath(target);
        using var region = Interruption.Defer();
        string created = tmp;
        temporaries[created] = 0;
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            {
                write(fs);
                fs.Flush(true);
            }
            if (current != null)
            {
                current.Stage(tmp, target);
                tmp = null;     // the group owns it now
                return;
            }
            Interruption.ThrowIfRequested($"before writing {path}");
            File.Move(tmp, target, overwrite: true);
            temporaries.TryRemove(created, out _);
            tmp = null;
        }
        finally
        {
            if (tmp != null && File.Exists(tmp)) File.Delete(tmp);
            if (tmp != null) temporaries.TryRemove(created, out _);
        }
    }

    /// <summary>Starts a group: every Write until Commit (or Dispose) is staged and renamed together by Commit.</summary>
    public static Group BeginGroup() => current = new Group(current);

    public sealed class Group : IDisposable
    {
        readonly Group? outer;
        readonly List<(string Temp, string Target)> staged = new();
        readonly IDisposable region = Interruption.Defer();
        bool closed;

        internal Group(Group? outer) => this.outer = outer;
        internal void Stage(string temp, string target) => staged.Add((temp, target));

        /// <summary>Renames every staged file over its target, unless a signal was received (then nothing is written).
        /// The renames themselves run to the end: a signal during them is only recorded.</summary>
        public void Commit()
        {
            Interruption.ThrowIfRequested("before writing the outputs");
            foreach (var (temp, target) in staged)
            {
                File.Move(temp, target, overwrite: true);
                temporaries.TryRemove(temp, out _);
            }
            staged.Clear();
            Dispose();
        }

        /// <summary>Deletes whatever was staged and not committed.</summary>
        public void Dispose()
        {
            if (closed) return;
            closed = true;
            foreach (var (temp, _) in staged)
            {
                try { File.Delete(temp); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
                temporaries.TryRemove(temp, out _);
            }
            staged.Clear();
            current = outer;
            region.Dispose();
        }
    }
}

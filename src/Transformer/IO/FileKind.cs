// What a path names — regular file, folder, FIFO, device, socket — asked of the OS *without opening it*.
// Opening a FIFO for reading blocks until a writer appears (forever, for a model path typed by mistake),
// and a character device such as /dev/zero or /dev/urandom never ends; so inputs are opened only when they
// are regular files, and outputs are refused when they name a device. .NET has no API for the file type
// on Unix (FileAttributes says only directory or not), so on Linux this calls statx(2), whose struct
// layout is the same on every architecture (stx_mode: 16 bits at byte 28). Symbolic links are followed,
// as open(2) follows them. Elsewhere it answers Unknown and the callers rely on the usual checks.
using System.Runtime.InteropServices;

namespace BlockDance.Transformer.IO;

public enum PathKind { Missing, Regular, Directory, Fifo, CharDevice, BlockDevice, Socket, Unknown }

public static class FileKind
{
    const int AtFdCwd = -100;         // AT_FDCWD: resolve a relative path from the working folder
    const uint StatxType = 0x1;       // STATX_TYPE: only the file type is needed
    const int ModeOffset = 28;        // offsetof(struct statx, stx_mode)

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    static extern int Statx(int dirfd, string path, int flags, uint mask, byte[] buffer);

    /// <summary>The kind of file `path` names, following symbolic links.</summary>
    public static PathKind Of(string path)
    {
        if (Directory.Exists(path)) return PathKind.Directory;
        if (!File.Exists(path)) return PathKind.Missing;
        if (!OperatingSystem.IsLinux()) return PathKind.Unknown;
        var buf = new byte[256];      // sizeof(struct statx) is 256
        try
        {
            if (Statx(AtFdCwd, path, 0, StatxType, buf) != 0) return PathKind.Unknown;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return PathKind.Unknown;  // a libc without statx (glibc < 2.28, musl < 1.2.5)
        }
        int mode = BitConverter.ToUInt16(buf, ModeOffset) & 0xF000;   // S_IFMT
        return mode switch
        {
            0x8000 => PathKind.Regular,
            0x4000 => PathKind.Directory,
            0x1000 => PathKind.Fifo,
            0x2000 => PathKind.CharDevice,
            0x6000 => PathKind.BlockDevice,
            0xC000 => PathKind.Socket,
            _ => PathKind.Unknown,
        };
    }

    public static string Describe(PathKind k) => k switch
    {
        PathKind.Fifo => "a FIFO (named pipe)",
        PathKind.CharDevice => "a character device",
        PathKind.BlockDevice => "a block device",
        PathKind.Socket => "a socket",
        PathKind.Directory => "a folder",
        PathKind.Missing => "nothing (no such file)",
        _ => "not a regular file",
    };

    /// <summary>A one-line SafeTensorsException (bad input, exit 2) unless `path` is a regular file or its kind
    /// cannot be told on this OS; called before opening. `what` names the input, e.g. "model file".</summary>
    public static void RequireRegular(string path, string what)
    {
        var k = Of(path);
        if (k is PathKind.Regular or PathKind.Unknown) return;
        throw new SafeTensorsException(path, null, $"{what}: expected a regular file, found {Describe(k)}");
    }
}

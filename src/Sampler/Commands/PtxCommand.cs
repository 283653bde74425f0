// blockdance ptx: the static GPU check, runnable on any machine (no GPU, no driver).
//   1. every kernel entry point → PTX (PtxCompiler: ILGPU's PTX backend, sm_80, ISA 7.8), PTX markers checked;
//   2. where ptxas is found (--ptxas, $PTXAS, or where tools/get-ptxas.sh puts it), each PTX is assembled
//      for sm_80 (A100) and sm_90 (H100/H200: what their driver JIT makes of the sm_80 PTX) and one line per
//      kernel and arch reports registers, spill bytes, static shared memory, LDL/STL count and whether the
//      SASS (cuobjdump -sass) contains every instruction the kernel claims (HMMA, LDSM, LDGSTS, …).
// Exit 1 when PTX generation or ptxas fails, a claim is not backed, a marked kernel spills or touches local
// memory; 0 otherwise. Without ptxas only step 1 runs (said so on stdout).
using System.Diagnostics;
using System.Text.RegularExpressions;
using BlockDance.Kernels.Harness;
using BlockDance.Sampler.Cli;

namespace BlockDance.Sampler.Commands;

public static class PtxCommand
{
    public static readonly string[] Archs = ["sm_80", "sm_90"];

    public static int Run(string[] argv)
    {
        var a = Args.Parse("ptx", argv);
        var outDir = a.Get("out")!;
        Directory.CreateDirectory(outDir);
        var ptxas = FindPtxas(a.Get("ptxas"));
        if (ptxas == null)
            Console.WriteLine("ptxas not found (--ptxas, $PTXAS, or run tools/get-ptxas.sh): generating and checking PTX only");
        else
            Console.WriteLine($"ptxas: {ptxas}");
        var filter = a.Get("kernel");
        int failed = 0, total = 0;
        using var compiler = new PtxCompiler();
        Console.WriteLine($"{"kernel",-40} {"arch",-6} {"regs",5} {"spill",6} {"smem",7} {"LDL/STL",7}  claims");
        foreach (var k in PtxCompiler.Discover())
        {
            if (filter != null && !k.Name.Contains(filter, StringComparison.Ordinal)) continue;
            total++;
            var r = compiler.Compile(k);
            var problems = PtxCompiler.MarkerProblems(r).ToList();
            var file = Path.Combine(outDir, k.Name + ".ptx");
            if (r.Ptx != null) File.WriteAllText(file, r.Ptx);
            if (ptxas == null || r.Ptx == null)
            {
                Console.WriteLine($"{k.Name,-40} {"ptx",-6} {(problems.Count == 0 ? "ok" : "FAIL: " + string.Join("; ", problems))}");
                if (problems.Count > 0) failed++;
                continue;
            }
            bool ok = problems.Count == 0;
            foreach (var arch in Archs)
            {
                var line = Assemble(ptxas, file, arch, k.Info);
                ok &= line.Problems.Count == 0;
                var all = problems.Concat(line.Problems).ToList();
                Console.WriteLine($"{k.Name,-40} {arch,-6} {line.Registers,5} {line.SpillBytes,6} {line.SharedBytes,7} {line.LocalOps,7}  " +
                                  $"{(line.ClaimsText.Length > 0 ? line.ClaimsText + " " : "")}{(all.Count == 0 ? "ok" : "FAIL: " + string.Join("; ", all))}");
            }
            if (!ok) failed++;
        }
        Console.WriteLine(failed == 0 ? $"ptx: all {total} kernels passed{(ptxas == null ? " (PTX markers only)" : " (sm_80, sm_90)")}; PTX in {Path.GetFullPath(outDir)}"
                                      : $"ptx: {failed} of {total} kernels FAILED");
        return failed == 0 ? 0 : 1;
    }

    /// <summary>--ptxas, else $PTXAS, else the folder tools/get-ptxas.sh installs into, else ptxas on PATH.</summary>
    public static string? FindPtxas(string? given)
    {
        if (given != null)
            return File.Exists(given) ? given : throw new UsageException($"--ptxas: expected the path of NVIDIA's ptxas, found no file '{given}'");
        if (Environment.GetEnvironmentVariable("PTXAS") is { Length: > 0 } env)
            return File.Exists(env) ? env : throw new UsageException($"$PTXAS: expected the path of NVIDIA's ptxas, found no file '{env}'");
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var cached = Path.Combine(home, ".cache", "ptxas-11.8", "usr", "bin", "ptxas");
        if (File.Exists(cached)) return cached;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            if (File.Exists(Path.Combine(dir, "ptxas"))) return Path.Combine(dir, "ptxas");
        return null;
    }

    public sealed record ArchLine(int Registers, int SpillBytes, int SharedBytes, int LocalOps, string ClaimsText, List<string> Problems);

    /// <summary>ptxas -v for one arch, then cuobjdump -sass (next to ptxas) for the claimed opcodes.</summary>
    static ArchLine Assemble(string ptxas, string ptxFile, string arch, GpuKernelAttribute info)
    {
        var problems = new List<string>();
        var cubin = Path.ChangeExtension(ptxFile, arch + ".cubin");
        var (rc, log) = Exec(ptxas, $"-v -arch={arch} \"{ptxFile}\" -o \"{cubin}\"");
        if (rc != 0)
        {
            problems.Add($"ptxas exit {rc}: {log.Split('\n').FirstOrDefault(l => l.Contains("error"))?.Trim() ?? log.Trim()}");
            return new ArchLine(0, 0, 0, 0, "", problems);
        }
        int regs = Int(log, @"Used (\d+) registers");
        int spill = Int(log, @"(\d+) bytes spill stores") + Int(log, @"(\d+) bytes spill loads");
        int stack = Int(log, @"(\d+) bytes stack frame");
        int smem = Int(log, @"(\d+) bytes smem");
        if (spill > 0) problems.Add($"{spill} spill bytes");
        var cuobjdump = Path.Combine(Path.GetDirectoryName(ptxas)!, "cuobjdump");
        var claims = PtxCompiler.Claims(info);
        int local = 0;
        var claimText = new List<string>();
        if (File.Exists(cuobjdump))
        {
            var (rc2, sass) = Exec(cuobjdump, $"-sass \"{cubin}\"");
            if (rc2 != 0) problems.Add($"cuobjdump exit {rc2}");
            local = Regex.Matches(sass, @"\b(LDL|STL)(\.\S+)?\s").Count;
            foreach (var c in claims)
            {
                int n = Regex.Matches(sass, $@"\b{Regex.Escape(c)}[\.\s]").Count;
                claimText.Add($"{c}×{n}");
                if (n == 0) problems.Add($"claims {c} but the SASS has none");
            }
        }
        else if (claims.Count > 0) problems.Add($"cuobjdump not found next to ptxas: cannot check {info.Claims}");
        // A kernel that claims tensor-core/async-copy instructions must keep everything in registers.
        if (claims.Count > 0 && (local > 0 || stack > 0)) problems.Add($"local memory: {local} LDL/STL, {stack} bytes stack frame");
        return new ArchLine(regs, spill, smem, local, string.Join(" ", claimText), problems);
    }

    static int Int(string text, string pattern)
    {
        var m = Regex.Match(text, pattern);
        return m.Success ? int.Parse(m.Groups[1].Value) : 0;
    }

    static (int, string) Exec(string exe, string args)
    {
        var psi = new ProcessStartInfo(exe, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        // cuobjdump -sass runs nvdisasm, which tools/get-ptxas.sh puts next to it.
        psi.Environment["PATH"] = Path.GetDirectoryName(exe) + ":" + Environment.GetEnvironmentVariable("PATH");
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var o = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, o + err.Result);
    }
}

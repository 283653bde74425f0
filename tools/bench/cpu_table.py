#!/usr/bin/env python3
"""The table of `tools/bench/side_by_side.sh cpu OUTDIR`: every CPU figure next to PyTorch and its target.

    python3 tools/bench/cpu_table.py OUTDIR      (reads the .json/.txt files the script wrote; prints markdown)

PyTorch's figure is the better median of its 1-thread and all-cores runs (its OpenMP threads spin-wait, so
under load 1 thread can win); the engine runs on all cores. Ratios: GEMM = engine GFLOP/s ÷ PyTorch GFLOP/s
(target ≥ 0.70); forwards and decode = engine ms ÷ PyTorch ms (targets ≤ 1.5, ≤ 1.5, ≤ 2); the demo sampling
and eval --quick are engine wall times against absolute targets (≤ 3 s, ≤ 120 s).
"""

import glob
import json
import os
import re
import statistics
import sys

out = sys.argv[1]


def load(path):
    return json.load(open(path)) if os.path.exists(path) else None


loads = {}
if os.path.exists(os.path.join(out, "load.txt")):
    for line in open(os.path.join(out, "load.txt")):
        part, rest = line.split(" ", 1)
        loads[part] = rest.strip()

rows = []


def torch_runs(prefix):
    """[(threads, json)] of the PyTorch runs of a part."""
    runs = []
    for p in sorted(glob.glob(os.path.join(out, prefix + "_torch_t*.json"))):
        runs.append((int(re.search(r"_t(\d+)\.json$", p).group(1)), load(p)))
    return runs


def row(figure, engine, torch_, ratio, target, met, part):
    rows.append("| %s | %s | %s | %s | %s | %s | %s |" % (figure, engine, torch_, ratio, target, "met" if met else "**not met**",
                                                     loads.get(part, "-")))


# GEMM: per shape, GFLOP/s
eng = load(os.path.join(out, "gemm_engine.json"))
if eng:
    tr = torch_runs("gemm")
    for e in eng:
        best = max(((t, s) for t, j in tr for s in j["shapes"] if s["label"] == e["label"]), key=lambda x: x[1]["gflops"], default=None)
        if best is None:
            continue
        t, s = best
        r = e["gflops"] / s["gflops"]
        row("GEMM " + e["label"], "%.1f GFLOP/s (%.1f ms, min %.1f, max %.1f)" % (e["gflops"], e["ms_median"], e["ms_min"], e["ms_max"]),
            "%.1f GFLOP/s (%d thr; %.1f ms, min %.1f, max %.1f)" % (s["gflops"], t, s["ms_median"], s["ms_min"], s["ms_max"]),
            "%.3f" % r, "≥ 0.70", r >= 0.70, "gemm")

# forwards: ms
for part, figure, target in (("demo", "demo DiT forward, model batch 20", 1.5), ("xl", "DiT-XL/2-256 forward, model batch 2", 1.5)):
    e = load(os.path.join(out, part + "_engine.json"))
    tr = [(t, j["fp32"]) for t, j in torch_runs(part) if j and "fp32" in j]
    if not e or not tr:
        continue
    t, best = min(tr, key=lambda x: x[1]["forward_ms_median"])
    r = e["forward_ms_median"] / best["forward_ms_median"]
    row(figure, "%.1f ms (min %.1f)" % (e["forward_ms_median"], e["forward_ms_min"]),
        "%.1f ms (%d thr; min %.1f)" % (best["forward_ms_median"], t, best["forward_ms_min"]), "%.2f×" % r, "≤ %.1f×" % target, r <= target, part)

e = load(os.path.join(out, "vae_engine.json"))
tr = torch_runs("vae")
if e and tr:
    e = e[0]
    t, best = min(tr, key=lambda x: x[1]["ms_median"])
    r = e["ms_median"] / best["ms_median"]
    row("SD-VAE decode, one 32×32 latent", "%.0f ms (min %.0f, max %.0f)" % (e["ms_median"], e["ms_min"], e["ms_max"]),
        "%.0f ms (%d thr; min %.0f, max %.0f)" % (best["ms_median"], t, best["ms_min"], best["ms_max"]), "%.2f×" % r, "≤ 2×", r <= 2, "vae")

p = os.path.join(out, "sample.txt")
if os.path.exists(p):
    ts = [float(m.group(1)) for m in re.finditer(r"time\s+([\d.]+) s wall", open(p).read())]
    if ts:
        med = statistics.median(ts)
        row("README demo sampling (DDIM-50, 10 digits, CFG 4)", "%.2f s (min %.2f, max %.2f, %d runs)" % (med, min(ts), max(ts), len(ts)),
            "-", "-", "≤ 3 s", med <= 3, "sample")
p = os.path.join(out, "eval.txt")
if os.path.exists(p):
    m = re.search(r"([\d.]+) s wall \(exit (\d+)\)", open(p).read())
    if m:
        s = float(m.group(1))
        row("eval --quick, every method", "%.0f s (exit %s)" % (s, m.group(2)), "-", "-", "≤ 120 s", s <= 120 and m.group(2) == "0", "eval")

print(open(os.path.join(out, "machine.txt")).read().strip().replace("\n", "  \n") + "\n")
print("| figure | engine (host backend, all cores) | PyTorch CPU fp32, best of 1 thread / all cores | ratio | target | | load avg (1, 5, 15 min) before the part |")
print("|---|---|---|---|---|---|---|")
print("\n".join(rows))

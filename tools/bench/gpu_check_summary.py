#!/usr/bin/env python3
"""Part (h) of tools/bench/gpu_check.sh: every ratio of one run, next to the targets of issues 18 and 22.

    python3 tools/bench/gpu_check_summary.py OUTDIR      → prints the table, writes OUTDIR/summary.md and summary.json

Reads whatever the parts left in OUTDIR (a missing or failed part gives "—" and its status from parts.tsv);
needs only the Python standard library. Ratios are engine/PyTorch latency (lower is better) or speedups
(higher is better); every figure comes from this one run on this one machine.
"""
import glob
import json
import os
import re
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def fmt(v, spec="%.3f"):
    return "—" if v is None else spec % v


def ratio(a, b):
    return a / b if a is not None and b else None


def attention_tflops(kernels_txt):
    """(version, T) → TFLOP/s from the kernel harness output: any line naming attention, a version, a
    t<T> shape and a number followed by TFLOP/s (the harness prints one line per version and shape)."""
    found = {}
    try:
        lines = open(kernels_txt).read().splitlines()
    except OSError:
        return found
    for line in lines:
        if "attention" not in line:
            continue
        v = re.search(r"\b(v\d[\w-]*)", line)
        t = re.search(r"\bt(\d+)\b", line)
        tf = re.search(r"([\d.]+)\s*TFLOP/s", line)
        if v and t and tf:
            found[(v.group(1), int(t.group(1)))] = float(tf.group(1))
    return found


def host_figures(out, add):
    """Issue 22's host-backend ratios: GEMM GFLOP/s from the harness (`gemm host <label> MxNxK … TFLOP/s`) vs
    PyTorch's F.linear, and the demo forward vs PyTorch; PyTorch's figure is the better of its thread counts."""
    torch_gemm = {}
    for f in glob.glob(os.path.join(out, "host_gemm_torch_t*.json")):
        for s in (load(f) or {}).get("shapes", []):
            torch_gemm[s["label"]] = max(torch_gemm.get(s["label"], 0), s["gflops"])
    try:
        lines = open(os.path.join(out, "host_gemm.txt")).read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        m = re.match(r"gemm\s+host\s+(\w+ \d+x\d+x\d+)\s.*?([\d.]+)\s+\S*\s*$", line)
        tf = re.search(r"\s([\d.]+)\s+-?\s*$", line)
        if not m or "ok" not in line or not tf:
            continue
        gf = float(tf.group(1)) * 1e3
        add("host GEMM GFLOP/s, engine, %s" % m.group(1), gf, "", "host_gemm")
        add("host GEMM engine / PyTorch CPU, %s" % m.group(1), ratio(gf, torch_gemm.get(m.group(1))), "≥ 0.70", "host_gemm, host_gemm_torch")
    e = load(os.path.join(out, "host_forward.json")) or {}
    t = [(load(f) or {}).get("fp32", {}).get("forward_ms_median") for f in glob.glob(os.path.join(out, "host_forward_torch_t*.json"))]
    t = min([v for v in t if v], default=None)
    add("host demo forward ms (model batch 20), engine", e.get("forward_ms_median"), "", "host_forward")
    add("host demo forward ms (model batch 20), PyTorch CPU best", t, "", "host_forward_torch")
    add("host demo forward engine / PyTorch CPU", ratio(e.get("forward_ms_median"), t), "≤ 1.5", "host_forward, host_forward_torch")


def main():
    out = sys.argv[1]
    parts = {}
    try:
        for row in open(os.path.join(out, "parts.tsv")).read().splitlines()[1:]:
            f = row.split("\t")
            if len(f) >= 4:
                parts[f[0]] = f[3]
    except OSError:
        pass
    machine = open(os.path.join(out, "machine.txt")).read().strip() if os.path.exists(os.path.join(out, "machine.txt")) else ""
    rows, js = [], {"parts": parts}

    def add(what, value, target, source):
        rows.append((what, value, target, source))
        js[what] = value

    e32, e16 = load(os.path.join(out, "engine_fp32.json")), load(os.path.join(out, "engine_bf16.json"))
    torch = load(os.path.join(out, "torch.json")) or {}
    t = {m: (torch.get(m) or {}).get("forward_ms_median") for m in ("fp32", "tf32", "bf16")}
    ef32 = e32 and e32.get("forward_ms_median")
    ef16 = e16 and e16.get("forward_ms_median")
    add("forward ms, engine fp32", ef32, "", "engine_fp32")
    add("forward ms, engine bf16", ef16, "", "engine_bf16")
    for m in ("fp32", "tf32", "bf16"):
        add("forward ms, PyTorch " + m, t[m], "", "torch")
    add("engine fp32 / PyTorch fp32 (TF32 off)", ratio(ef32, t["fp32"]), "≤ 1.5", "engine_fp32, torch")
    add("engine bf16 / PyTorch bf16", ratio(ef16, t["bf16"]), "≤ 2 (goal < 1)", "engine_bf16, torch")
    add("engine fp32 / PyTorch TF32", ratio(ef32, t["tf32"]), "", "engine_fp32, torch")
    for name, e in (("fp32", e32), ("bf16", e16)):
        km = (e or {}).get("kernel_ms") or {}
        total = sum(km.values())
        for k in sorted(km, key=km.get, reverse=True)[:6]:
            add("share of forward, engine %s, %s" % (name, k), km[k] / total if total else None, "", "engine_" + name)

    sdpa = load(os.path.join(out, "sdpa.json")) or {}
    harness = attention_tflops(os.path.join(out, "kernels.txt"))
    for s in sdpa.get("shapes", []):
        add("attention TFLOP/s, PyTorch SDPA %s T=%d" % (s["mode"], s["t"]), s["tflops_per_second"], "", "sdpa")
    for (v, tt), tf in sorted(harness.items()):
        add("attention TFLOP/s, engine %s T=%d" % (v, tt), tf, "", "kernels")
        ref = next((s["tflops_per_second"] for s in sdpa.get("shapes", [])
                    if s["t"] == tt and s["mode"] == ("bf16" if "bf16" in v or v.startswith("v3") else "fp32")), None)
        add("attention engine %s / SDPA at T=%d (throughput)" % (v, tt), ratio(tf, ref),
            "≥ 0.5" if v.startswith("v3") else "", "kernels, sdpa")

    se = load(os.path.join(out, "sampling_engine.json")) or {}
    st = load(os.path.join(out, "sampling_torch.json")) or {}
    st = next((v for k, v in st.items() if isinstance(v, dict)), {})
    for label in ("none", "blockdance N=2", "blockdance N=3"):
        add("DDIM sampling s, engine, " + label, (se.get("sampling_seconds") or {}).get(label), "", "sampling_engine")
        add("DDIM sampling s, PyTorch, " + label, st.get("sampling_s " + label), "", "sampling_torch")
    for n in (2, 3):
        label = "blockdance N=%d" % n
        add("speedup N=%d vs none, engine" % n, (se.get("speedup_vs_none") or {}).get(label), "≥ 1.30" if n == 2 else "", "sampling_engine")
        add("theoretical speedup N=%d (block evaluations)" % n, (se.get("theoretical_speedup") or {}).get(label), "", "sampling_engine")
        add("speedup N=%d vs none, PyTorch" % n, ratio(st.get("sampling_s none"), st.get("sampling_s " + label)), "", "sampling_torch")
    add("engine / PyTorch sampling, no cache", ratio((se.get("sampling_seconds") or {}).get("none"), st.get("sampling_s none")), "", "sampling_*")

    sw = {}
    for f in glob.glob(os.path.join(out, "sweep_engine_b*.json")):
        r = load(f) or {}
        b = int(re.search(r"_b(\d+)\.json$", f).group(1))
        sw[b] = (r.get("speedup_vs_none") or {}).get("blockdance N=2")
    swt = {r["batch"]: r.get("speedup N=2") for r in (load(os.path.join(out, "sweep_torch.json")) or {}).get("batches", [])}
    for b in sorted(set(sw) | set(swt)):
        add("N=2 speedup at %d images, engine" % b, sw.get(b), "", "sweep_engine")
        add("N=2 speedup at %d images, PyTorch" % b, swt.get(b), "", "sweep_torch")

    host_figures(out, add)

    lines = ["# gpu_check summary", "", "```", machine, "```", "",
             "| part | status |", "|---|---|"] + ["| %s | %s |" % kv for kv in parts.items()] + [
             "", "| figure | value | target | from |", "|---|---:|---|---|"]
    for what, value, target, source in rows:
        lines.append("| %s | %s | %s | %s |" % (what, fmt(value), target, source))
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(js, f, indent=2)
    print(text)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The PyTorch side of `blockdance bench`: the same DiT, the same weights file, the same figures.

    python3 tools/bench/bench_torch.py --model dit.safetensors --heads 16 [--device cuda] [--batch 8]
        [--cfg 4] [--iters 20] [--steps 50] [--modes fp32,tf32,bf16] [--json out.json]
    python3 tools/bench/bench_torch.py --make-random XL/2 --image-size 256 --out dit_xl2_random.safetensors
    python3 tools/bench/bench_torch.py --sdpa xl [--json sdpa.json]     attention alone, the harness's shapes
    python3 tools/bench/bench_torch.py --model dit.safetensors --sweep 1,2,4,8,16,32 --steps 20 --modes bf16 [--json s.json]
    python3 tools/bench/bench_torch.py --gemm xl|demo --device cpu --threads 2 [--json g.json]   F.linear alone
    python3 tools/bench/bench_torch.py --make-vae vae.safetensors      random weights in SD-VAE's shapes
    python3 tools/bench/bench_torch.py --vae vae.safetensors --latent 32 --device cpu [--json v.json]

Modes: fp32 with TF32 off, TF32 matmuls, and bf16 (weights and activations cast, autocast-free). Attention
goes through F.scaled_dot_product_attention when this PyTorch has it (2.x), else it is written out.
Reports per-forward latency (median of --iters after warm-up), achieved TFLOP/s (the engine's FLOP
count: 2·m·n·k per Linear + 4·N·H·T²·hd attention), peak device memory, and DDIM sampling wall clock
with no cache and BlockDance N = 2 and 3 (boundary ⌊0.75·depth⌋−1, window [0.25, 0.95)).
--sdpa times F.scaled_dot_product_attention alone at the shapes of `blockdance kernels --op attention`
(small: N 2, T 19, 2 heads; xl: N 16, 16 heads, T 256 and 1024; head dim 72), fp32 (TF32 off) and bf16,
q/k/v as (N, H, T, 72) views of one packed qkv tensor as in the model; TFLOP/s = 4·N·H·T²·hd / time.
--sweep runs DDIM sampling with no cache and BlockDance N = 2 at each listed batch (images; the model
batch is twice that with CFG) and reports the N = 2 speedup per batch, for the first of --modes.
--gemm times F.linear(x, W, b) (fp32) at the shapes of `blockdance kernels --op gemm --shapes xl|demo`;
--vae decodes one (1, 4, S, S) latent with tools/reference/vae_reference.py. On the CPU, --threads sets
torch.set_num_threads (default: all cores); each figure is the median of --iters runs, min and max beside it.
Model code: tools/reference/dit_reference.py (the code the test fixtures come from).
"""

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from dit_reference import (  # noqa: E402
    DiT, SpacedDiffusion, load_safetensors, save_safetensors, space_timesteps, timestep_embedding,
)

PRESETS = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}


class BenchDiT(DiT):
    """The reference DiT with SDPA attention (when available) and a block range for BlockDance."""

    def attn(self, x, i):
        if not hasattr(F, "scaled_dot_product_attention"):
            return super().attn(x, i)
        N, T, D = x.shape
        hd = D // self.H
        qkv = self.lin(x, "blocks.%d.attn.qkv" % i).reshape(N, T, 3, self.H, hd).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.lin(o.transpose(1, 2).reshape(N, T, D), "blocks.%d.attn.proj" % i)

    def cond(self, t, y):
        dtype = self.sd["pos_embed"].dtype
        te = timestep_embedding(t.float()).to(dtype)  # frequencies in float32, as the reference
        te = self.lin(F.silu(self.lin(te, "t_embedder.mlp.0")), "t_embedder.mlp.2")
        return te + self.sd["y_embedder.embedding_table.weight"][y.long()]

    def run(self, x, t, y, start=0, feature=None, store_after=-1):
        """Forward from block `start` (feature = stored output of block start−1); returns (out, stored)."""
        c = self.cond(t, y)
        h = self.embed(x) if start == 0 else feature
        stored = None
        for i in range(start, self.cfg["depth"]):
            h = self.block(h, c, i)
            if i == store_after:
                stored = h
        return self.final(h, c), stored

    def flops(self, n):
        cfg = self.cfg
        D, T, p = cfg["hidden"], (cfg["input_size"] // cfg["patch"]) ** 2, cfg["patch"]
        lin = lambda m, o, i: 2 * m * o * i  # noqa: E731
        block = (lin(n, 6 * D, D) + lin(n * T, 3 * D, D) + 4 * n * T * T * D + lin(n * T, D, D)
                 + lin(n * T, 4 * D, D) + lin(n * T, D, 4 * D))
        embed = lin(n, D, 256) + lin(n, D, D) + 2 * n * T * D * cfg["in_channels"] * p * p
        final = lin(n, 2 * D, D) + lin(n * T, p * p * cfg["out_channels"], D)
        return embed + cfg["depth"] * block + final


def make_random(preset, image_size, out):
    name, patch = preset.replace("DiT-", "").split("/")
    depth, D, H = PRESETS[name]
    p, C, S = int(patch), 4, image_size // 8
    g = torch.Generator().manual_seed(0)
    sd = {}

    def lin(k, o, i):
        sd[k + ".weight"] = torch.randn(o, i, generator=g) / math.sqrt(i)
        sd[k + ".bias"] = torch.randn(o, generator=g) * 0.02
    sd["x_embedder.proj.weight"] = torch.randn(D, C, p, p, generator=g) / math.sqrt(C * p * p)
    sd["x_embedder.proj.bias"] = torch.zeros(D)
    from dit_reference import get_2d_sincos_pos_embed
    sd["pos_embed"] = torch.from_numpy(get_2d_sincos_pos_embed(D, S // p)).float().unsqueeze(0)
    lin("t_embedder.mlp.0", D, 256)
    lin("t_embedder.mlp.2", D, D)
    sd["y_embedder.embedding_table.weight"] = torch.randn(1001, D, generator=g) * 0.02
    for b in range(depth):
        lin("blocks.%d.attn.qkv" % b, 3 * D, D)
        lin("blocks.%d.attn.proj" % b, D, D)
        lin("blocks.%d.mlp.fc1" % b, 4 * D, D)
        lin("blocks.%d.mlp.fc2" % b, D, 4 * D)
        lin("blocks.%d.adaLN_modulation.1" % b, 6 * D, D)
    lin("final_layer.adaLN_modulation.1", 2 * D, D)
    lin("final_layer.linear", p * p * 2 * C, D)
    save_safetensors(out, sd, {"format": "official", "num_heads": str(H), "note": "random weights for benchmarks"})
    print("wrote %s: DiT-%s/%d at %d px, random weights" % (out, name, p, image_size))


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def sample(model, dev, dtype, classes, steps, cfg_scale, reuse):
    """DDIM with official CFG; reuse[i] → start at block b+1 from the stored feature."""
    cfg = model.cfg
    b_ = max(0, min(int(0.75 * cfg["depth"]) - 1, cfg["depth"] - 2))
    diff = SpacedDiffusion(space_timesteps(1000, str(steps)))
    diff.const_dtype = dtype
    n = len(classes)
    S, C = cfg["input_size"], cfg["in_channels"]
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(n, C, S, S, generator=g).to(dev, dtype)
    y = torch.tensor(classes + [cfg["num_classes"]] * n, device=dev)
    feature = None
    for k in range(steps):
        i = steps - 1 - k
        t = torch.full((2 * n,), float(diff.timestep_map[i]), device=dev, dtype=dtype)
        xx = torch.cat([x, x])
        if reuse[k] and feature is not None:
            out, _ = model.run(xx, t, y, start=b_ + 1, feature=feature)
        else:
            out, feature = model.run(xx, t, y, store_after=b_)
        eps = out[:, :C]
        g_eps = eps[n:] + cfg_scale * (eps[:n] - eps[n:])
        if C >= 3:
            g_eps = torch.cat([g_eps[:, :3], eps[:n, 3:]], dim=1)
        x = diff.ddim_step(x, i, torch.cat([g_eps, out[:n, C:]], dim=1))
    return x


def reuse_schedule(steps, n, start=0.25, end=0.95):
    reuse, first = [False] * steps, None
    for i in range(steps):
        f = i / steps
        if f < start or f >= end:
            continue
        first = i if first is None else first
        reuse[i] = (i - first) % n != 0
    return reuse


def bench(args):
    dev = torch.device(args.device)
    sd, meta = load_safetensors(args.model)
    heads = args.heads or int(meta.get("num_heads", 0))
    results = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "torch": torch.__version__}
    for mode in args.modes.split(","):
        if dev.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
            torch.backends.cudnn.allow_tf32 = mode == "tf32"
            torch.cuda.reset_peak_memory_stats(dev)
        dtype = torch.bfloat16 if mode == "bf16" else torch.float32
        model = BenchDiT({k: v.to(dev, dtype) for k, v in sd.items()}, heads)
        cfg = model.cfg
        n = args.batch * (2 if args.cfg > 1 else 1)
        S = cfg["input_size"]
        x = torch.randn(n, cfg["in_channels"], S, S, device=dev, dtype=dtype)
        t = torch.full((n,), 500.0, device=dev, dtype=dtype)
        y = torch.arange(n, device=dev) % cfg["num_classes"]
        times = []
        with torch.no_grad():
            for i in range(args.warmup + args.iters):
                sync(dev)
                t0 = time.perf_counter()
                model.run(x, t, y)
                sync(dev)
                if i >= args.warmup:
                    times.append((time.perf_counter() - t0) * 1e3)
            times.sort()
            med = times[len(times) // 2]
            r = {"forward_ms_median": med, "forward_ms_min": times[0], "gflop": model.flops(n) / 1e9,
                 "tflops_per_second": model.flops(n) / (med / 1e3) / 1e12}
            if dev.type == "cuda":
                r["peak_memory_mib"] = torch.cuda.max_memory_allocated(dev) / 2**20
            classes = [i % cfg["num_classes"] for i in range(args.batch)]
            for label, nn_ in (("none", 1), ("blockdance N=2", 2), ("blockdance N=3", 3)):
                if args.steps <= 0:
                    break
                sync(dev)
                t0 = time.perf_counter()
                sample(model, dev, dtype, classes, args.steps, args.cfg, reuse_schedule(args.steps, nn_))
                sync(dev)
                r["sampling_s " + label] = time.perf_counter() - t0
        results[mode] = r
        print("%-5s forward median %.2f ms (min %.2f), %.2f GFLOP, %.3f TFLOP/s%s" % (
            mode, med, times[0], r["gflop"], r["tflops_per_second"],
            ", peak %.0f MiB" % r["peak_memory_mib"] if "peak_memory_mib" in r else ""))
        for k, v in r.items():
            if k.startswith("sampling_s"):
                print("      %s: %.2f s (speedup %.3fx)" % (k[11:], v, r["sampling_s none"] / v))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


SDPA_SHAPES = {"small": [(2, 19, 2, 72)], "xl": [(16, 256, 16, 72), (16, 1024, 16, 72)]}


def timed(fn, dev, warmup, iters):
    """Median milliseconds of fn() over iters runs after warmup runs, synchronized around each run."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        sync(dev)
        t0 = time.perf_counter()
        fn()
        sync(dev)
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def bench_sdpa(args):
    dev = torch.device(args.device)
    have = hasattr(F, "scaled_dot_product_attention")
    results = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "torch": torch.__version__,
               "kernel": "scaled_dot_product_attention" if have else "written out (this PyTorch has no SDPA)", "shapes": []}
    for n, t, h, hd in SDPA_SHAPES[args.sdpa]:
        for mode in ("fp32", "bf16"):
            if dev.type == "cuda":
                torch.backends.cuda.matmul.allow_tf32 = False
            dtype = torch.bfloat16 if mode == "bf16" else torch.float32
            g = torch.Generator(device="cpu").manual_seed(0)
            qkv = (torch.rand(n, t, 3, h, hd, generator=g) * 2 - 1).to(dev, dtype).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            if have:
                fn = lambda: F.scaled_dot_product_attention(q, k, v)  # noqa: E731
            else:
                fn = lambda: torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), -1) @ v  # noqa: E731
            with torch.no_grad():
                ms = timed(fn, dev, args.warmup, args.iters)
            flops = 4.0 * n * h * t * t * hd
            r = {"label": "n%d t%d h%d hd%d" % (n, t, h, hd), "n": n, "t": t, "heads": h, "hd": hd, "mode": mode,
                 "ms_median": ms, "tflops_per_second": flops / (ms / 1e3) / 1e12}
            results["shapes"].append(r)
            print("sdpa %-4s %-20s %9.4f ms  %8.3f TFLOP/s" % (mode, r["label"], ms, r["tflops_per_second"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


GEMM_SHAPES = {
    "xl": [("qkv", 4096, 3456, 1152), ("proj", 4096, 1152, 1152), ("fc1", 4096, 4608, 1152),
           ("fc2", 4096, 1152, 4608), ("adaLN", 16, 6912, 1152)],
    "demo": [("qkv", 980, 288, 96), ("proj", 980, 96, 96), ("fc1", 980, 384, 96), ("fc2", 980, 96, 384),
             ("adaLN", 20, 576, 96)],
}


def timed_spread(fn, warmup, iters):
    """(median, min, max) milliseconds of fn() over iters runs after warmup runs (CPU: no sync needed)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2], times[0], times[-1]


def bench_gemm(args):
    results = {"device": "cpu", "torch": torch.__version__, "threads": torch.get_num_threads(), "shapes": []}
    g = torch.Generator().manual_seed(0)
    for label, m, n, k in GEMM_SHAPES[args.gemm]:
        x = torch.rand(m, k, generator=g) * 2 - 1
        w = (torch.rand(n, k, generator=g) * 2 - 1) * 0.3
        b = torch.rand(n, generator=g) * 2 - 1
        with torch.no_grad():
            med, lo, hi = timed_spread(lambda: F.linear(x, w, b), args.warmup, args.iters)
        gf = 2.0 * m * n * k / (med / 1e3) / 1e9
        results["shapes"].append({"label": "%s %dx%dx%d" % (label, m, n, k), "ms_median": med, "ms_min": lo, "ms_max": hi,
                                  "gflops": gf})
        print("torch gemm %-6s %dx%dx%d: median %.2f ms (min %.2f, max %.2f), %.1f GFLOP/s, %d threads" % (
            label, m, n, k, med, lo, hi, gf, torch.get_num_threads()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


def make_vae(out):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
    from vae_reference import tiny_vae_weights
    sd = tiny_vae_weights(torch.Generator().manual_seed(0), block_out=(128, 256, 512, 512))
    save_safetensors(out, sd, {"note": "random weights in sd-vae-ft-ema's shapes, for benchmarks"})
    print("wrote %s: SD-VAE decoder shapes, random weights" % out)


def bench_vae(args):
    from vae_reference import VaeDecoder
    sd, _ = load_safetensors(args.vae)
    vae = VaeDecoder(sd, groups=32)
    z = torch.randn(1, 4, args.latent, args.latent, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        med, lo, hi = timed_spread(lambda: vae.forward_all(z), 1, args.iters)
    print("torch vae decode 1x4x%dx%d: median %.1f ms (min %.1f, max %.1f), %d threads" % (
        args.latent, args.latent, med, lo, hi, torch.get_num_threads()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"label": "vae decode %dx%d" % (args.latent, args.latent), "ms_median": med, "ms_min": lo,
                       "ms_max": hi, "threads": torch.get_num_threads(), "torch": torch.__version__}, f, indent=2)


def sweep(args):
    """N = 2 speedup over uncached DDIM sampling at each batch size (a reduced step count is fine)."""
    dev = torch.device(args.device)
    sd, meta = load_safetensors(args.model)
    heads = args.heads or int(meta.get("num_heads", 0))
    mode = args.modes.split(",")[0]
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
    dtype = torch.bfloat16 if mode == "bf16" else torch.float32
    model = BenchDiT({k: v.to(dev, dtype) for k, v in sd.items()}, heads)
    results = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "mode": mode,
               "steps": args.steps, "batches": []}
    with torch.no_grad():
        sample(model, dev, dtype, [0], 2, args.cfg, [False, False])  # warm-up
        for b in [int(x) for x in args.sweep.split(",")]:
            classes = [i % model.cfg["num_classes"] for i in range(b)]
            r = {"batch": b}
            for label, nn_ in (("none", 1), ("blockdance N=2", 2)):
                sync(dev)
                t0 = time.perf_counter()
                sample(model, dev, dtype, classes, args.steps, args.cfg, reuse_schedule(args.steps, nn_))
                sync(dev)
                r["sampling_s " + label] = time.perf_counter() - t0
            r["speedup N=2"] = r["sampling_s none"] / r["sampling_s blockdance N=2"]
            results["batches"].append(r)
            print("sweep %-4s batch %3d: none %.3f s, N=2 %.3f s, speedup %.3fx" % (
                mode, b, r["sampling_s none"], r["sampling_s blockdance N=2"], r["speedup N=2"]), flush=True)
            if args.json:  # written after every batch, so a time limit keeps what finished
                with open(args.json, "w") as f:
                    json.dump(results, f, indent=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--heads", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--cfg", type=float, default=4.0)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--modes", default="fp32,tf32,bf16")
    ap.add_argument("--json")
    ap.add_argument("--make-random", metavar="PRESET")
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--out")
    ap.add_argument("--sdpa", choices=sorted(SDPA_SHAPES), help="time attention alone at the harness's shapes")
    ap.add_argument("--sweep", help="batch sizes for the N = 2 speedup sweep, e.g. 1,2,4,8,16,32")
    ap.add_argument("--gemm", choices=sorted(GEMM_SHAPES), help="time F.linear alone at the harness's shapes")
    ap.add_argument("--make-vae", metavar="OUT", help="write random weights in SD-VAE's decoder shapes")
    ap.add_argument("--vae", metavar="FILE", help="time the VAE decode of one latent")
    ap.add_argument("--latent", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0, help="CPU: torch.set_num_threads (default all cores)")
    args = ap.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(args.threads or os.cpu_count())
    if args.make_vae:
        make_vae(args.make_vae)
    elif args.gemm:
        bench_gemm(args)
    elif args.vae:
        bench_vae(args)
    elif args.make_random:
        make_random(args.make_random, args.image_size, args.out)
    elif args.sdpa:
        bench_sdpa(args)
    elif args.sweep:
        sweep(args)
    else:
        bench(args)


if __name__ == "__main__":
    main()

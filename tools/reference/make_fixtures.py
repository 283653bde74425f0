#!/usr/bin/env python3
"""Generate the PyTorch reference fixtures for BlockDance.NET.

Run from the repository root:

    /usr/bin/python3 tools/reference/make_fixtures.py

Needs only Debian's python3-torch (PyTorch 1.13) and python3-numpy; no pip packages.
Everything is deterministic: regenerating reproduces the files byte for byte (on the same
machine / same PyTorch build; see tools/reference/README.md).

The script is organised as one function per fixture (``fixture_*``), each with its own seed, so a
new fixture (e.g. the VAE decoder) can be added without changing the bytes of the existing ones.
Register new fixture functions in ``FIXTURES`` at the bottom.
"""

import hashlib
import json
import math
import os
import sys
from collections import OrderedDict

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # vae_reference, diffusers_layout
import torch.nn.functional as F

from dit_reference import (  # noqa: E402  (the shared model, diffusion and safetensors code)
    DiT, SpacedDiffusion, get_2d_sincos_pos_embed, infer_dit_config, load_safetensors, save_safetensors,
    space_timesteps, timestep_embedding,
)

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_DIR = os.path.join(REPO_ROOT, "tests", "fixtures")

BASE_SEED = 20250301  # every fixture derives its own seed from this + a fixed offset


def make_gen(offset):
    g = torch.Generator()
    g.manual_seed(BASE_SEED + offset)
    return g


# --------------------------------------------------------------------------------------------
# safetensors writer / reader (the format is small; see docs/formats.md)
# --------------------------------------------------------------------------------------------

def dit_state_dict_shapes(cfg):
    D, C, p = cfg["hidden"], cfg["in_channels"], cfg["patch"]
    Cout = 2 * C if cfg["learn_sigma"] else C
    T = (cfg["input_size"] // p) ** 2
    shapes = OrderedDict()
    shapes["pos_embed"] = [1, T, D]
    shapes["x_embedder.proj.weight"] = [D, C, p, p]
    shapes["x_embedder.proj.bias"] = [D]
    shapes["t_embedder.mlp.0.weight"] = [D, 256]
    shapes["t_embedder.mlp.0.bias"] = [D]
    shapes["t_embedder.mlp.2.weight"] = [D, D]
    shapes["t_embedder.mlp.2.bias"] = [D]
    shapes["y_embedder.embedding_table.weight"] = [cfg["num_classes"] + 1, D]
    for i in range(cfg["depth"]):
        b = "blocks.%d." % i
        shapes[b + "attn.qkv.weight"] = [3 * D, D]
        shapes[b + "attn.qkv.bias"] = [3 * D]
        shapes[b + "attn.proj.weight"] = [D, D]
        shapes[b + "attn.proj.bias"] = [D]
        shapes[b + "mlp.fc1.weight"] = [4 * D, D]
        shapes[b + "mlp.fc1.bias"] = [4 * D]
        shapes[b + "mlp.fc2.weight"] = [D, 4 * D]
        shapes[b + "mlp.fc2.bias"] = [D]
        shapes[b + "adaLN_modulation.1.weight"] = [6 * D, D]
        shapes[b + "adaLN_modulation.1.bias"] = [6 * D]
    shapes["final_layer.linear.weight"] = [p * p * Cout, D]
    shapes["final_layer.linear.bias"] = [p * p * Cout]
    shapes["final_layer.adaLN_modulation.1.weight"] = [2 * D, D]
    shapes["final_layer.adaLN_modulation.1.bias"] = [2 * D]
    return shapes


# weight std = gain / sqrt(fan_in); bias std fixed. Chosen so activations stay O(1), attention is
# far from uniform, and the adaLN shift/scale/gate are O(0.3) (modulation clearly matters while the
# residual stream stays O(1), so fp32 reference error stays well under the 1e-4 test tolerance).
_INIT = {
    "x_embedder.proj": (1.0, 0.05),
    "t_embedder.mlp.0": (1.5, 0.05),
    "t_embedder.mlp.2": (1.0, 0.05),
    "attn.qkv": (1.2, 0.05),
    "attn.proj": (1.0, 0.03),
    "mlp.fc1": (1.0, 0.05),
    "mlp.fc2": (1.0, 0.03),
    "adaLN_modulation.1": (0.5, 0.05),
    "final_layer.linear": (1.0, 0.03),
    "final_layer.adaLN_modulation.1": (0.5, 0.05),
}
_LABEL_STD = 0.7


def random_dit_weights(cfg, gen):
    D = cfg["hidden"]
    sd = OrderedDict()
    for name, shape in dit_state_dict_shapes(cfg).items():
        if name == "pos_embed":
            T = shape[1]
            pe = get_2d_sincos_pos_embed(D, int(round(math.sqrt(T))))
            sd[name] = torch.from_numpy(pe).float().unsqueeze(0)
            continue
        if name == "y_embedder.embedding_table.weight":
            sd[name] = torch.randn(shape, generator=gen) * _LABEL_STD
            continue
        mod, kind = name.rsplit(".", 1)
        key = mod
        if mod.startswith("blocks."):
            key = mod.split(".", 2)[2]
        gain, bstd = _INIT[key]
        if kind == "weight":
            fan_in = int(np.prod(shape[1:]))
            sd[name] = torch.randn(shape, generator=gen) * (gain / math.sqrt(fan_in))
        else:
            sd[name] = torch.randn(shape, generator=gen) * bstd
    return sd


def ts_tensor(steps):
    return torch.tensor([float(s) for s in steps], dtype=torch.float32)


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------

DIT_CONFIGS = OrderedDict(
    [
        ("dit_p2", dict(in_channels=4, input_size=8, patch=2, hidden=64, heads=4, depth=2,
                        learn_sigma=True, num_classes=10, seed_offset=100,
                        t=[17, 803], y=[3, 9])),
        ("dit_p4", dict(in_channels=3, input_size=16, patch=4, hidden=144, heads=2, depth=2,
                        learn_sigma=True, num_classes=5, seed_offset=200,
                        t=[17, 803], y=[4, 1], storage="f16")),
    ]
)
CFG_SCALE = 4.0


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def fixture_dit(name):
    cfg = DIT_CONFIGS[name]
    gen = make_gen(cfg["seed_offset"])
    sd = random_dit_weights(cfg, gen)
    if cfg.get("storage") == "f16":
        # F16 storage (half the bytes, and it exercises the reader's F16 path); the model and the
        # references compute in float32 from the stored (rounded) values. pos_embed stays F32.
        sd = OrderedDict((k, v if k == "pos_embed" else v.half()) for k, v in sd.items())
    H = cfg["heads"]
    wpath = os.path.join(OUT_DIR, name + ".weights.safetensors")
    save_safetensors(wpath, sd, {"format": "official", "num_heads": str(H)})
    # use exactly what was stored
    sd, meta = load_safetensors(wpath)
    sd = OrderedDict((k, v.float()) for k, v in sd.items())
    assert meta == {"format": "official", "num_heads": str(H)}
    model = DiT(sd, H)
    mc = model.cfg
    C, S = mc["in_channels"], mc["input_size"]
    N = 2

    x = torch.randn(N, C, S, S, generator=gen)
    t = torch.tensor([float(v) for v in cfg["t"]], dtype=torch.float32)
    y = torch.tensor([float(v) for v in cfg["y"]], dtype=torch.float32)

    with torch.no_grad():
        res = model.forward_all(x, t, y)
        ref = OrderedDict()
        ref["x"] = x
        ref["t"] = t
        ref["y"] = y
        for k, v in res.items():
            ref[k] = v
        ref["resume.final"] = model.forward_from(res["block.0"], res["c"], 1)

        null = float(mc["num_classes"])
        cfg_x = torch.cat([x, x], 0)
        cfg_y = torch.cat([y, torch.full_like(y, null)], 0)
        cfg_t = torch.cat([t, t], 0)
        ref["cfg.x"] = cfg_x
        ref["cfg.y"] = cfg_y
        ref["cfg.t"] = cfg_t
        ref["cfg.scale"] = torch.tensor(CFG_SCALE, dtype=torch.float32)
        ref["cfg.out"] = model.forward_with_cfg(cfg_x, cfg_t, cfg_y, CFG_SCALE, guided_channels=min(3, C))
        ref["cfg_all.out"] = model.forward_with_cfg(cfg_x, cfg_t, cfg_y, CFG_SCALE, guided_channels=C)

        # ---- self-checks ----
        for k, v in ref.items():
            assert torch.isfinite(v).all(), "%s: non-finite %s" % (name, k)
        assert torch.equal(ref["resume.final"], ref["final"]), "resume.final != final"
        # float64 pass: float32 error of the stored references
        sd64 = OrderedDict((k, v.double()) for k, v in sd.items())
        m64 = DiT(sd64, H)
        r64 = m64.forward_all(x.double(), t.double(), y.double())
        errs = {k: _rel(res[k].double(), r64[k]) for k in r64}
        worst = max(errs.values())
        assert worst < 1e-4, errs
        # adaLN modulation must matter: statistics of the six chunks, and the output with the
        # adaLN outputs forced to zero must differ clearly.
        m = model.lin(F.silu(res["c"]), "blocks.0.adaLN_modulation.1")
        chunk_rms = [float(ch.pow(2).mean().sqrt()) for ch in m.chunk(6, dim=1)]
        assert min(chunk_rms) > 0.2, chunk_rms
        model.zero_adaln = True
        f0 = model.forward(x, t, y)
        model.zero_adaln = False
        d_adaln = _rel(f0, res["final"])
        assert d_adaln > 0.3, d_adaln
        # CFG must actually change things, and labels must matter
        d_cfg = _rel(ref["cfg.out"][:N, :3], res["final"][:, :3])
        assert d_cfg > 0.1, d_cfg
        # guided channels equal in both halves; unguided keep their own
        assert torch.equal(ref["cfg.out"][:N, :3], ref["cfg.out"][N:, :3])
        assert torch.equal(ref["cfg.out"][:N, 3:], model.forward(cfg_x, cfg_t, cfg_y)[:N, 3:])

    print("[%s] T=%d D=%d heads=%d depth=%d out=%d | f32 vs f64 max rel err %.2e | adaLN chunk rms %s"
          " | zero-adaLN changes output by %.2f (rel) | cfg changes eps by %.2f | |final| max %.2f, "
          "|x_embed| rms %.2f, |block.%d| rms %.2f"
          % (name, (S // mc["patch"]) ** 2, mc["hidden"], H, mc["depth"], mc["out_channels"], worst,
             ["%.2f" % r for r in chunk_rms], d_adaln, d_cfg, float(res["final"].abs().max()),
             float(res["x_embed"].pow(2).mean().sqrt()), mc["depth"] - 1,
             float(res["block.%d" % (mc["depth"] - 1)].pow(2).mean().sqrt())))

    rpath = os.path.join(OUT_DIR, name + ".ref.safetensors")
    save_safetensors(rpath, ref, {
        "weights": name + ".weights.safetensors",
        "num_heads": str(H),
        "cfg_scale": repr(CFG_SCALE),
        "cfg.out": "official forward_with_cfg: channels 0..%d guided, the rest keep each half's own" % (min(3, C) - 1),
        "cfg_all.out": "channels 0..%d (all eps) guided, v channels keep each half's own" % (C - 1),
        "resume.final": "block.0 fed into blocks 1.. with the same c, then the final layer (== final)",
        "dtype": "float32 PyTorch %s results" % torch.__version__,
    })
    return [wpath, rpath]


def fixture_dit_p2():
    return fixture_dit("dit_p2")


def fixture_dit_p4():
    return fixture_dit("dit_p4")


TRAJ_STEPS = 10
TRAJ_LABELS = [3, 7]


def _cfg_model_fn(model, y, null):
    """Returns f(x_doubled, original_t) -> guided model output for the doubled batch."""
    dt = model.sd["pos_embed"].dtype
    yy = torch.tensor([float(v) for v in y] + [float(null)] * len(y), dtype=dt)

    def fn(xx, t_orig):
        tt = torch.full((xx.shape[0],), float(t_orig), dtype=dt)
        return model.forward_with_cfg(xx, tt, yy, CFG_SCALE, guided_channels=min(3, model.cfg["in_channels"]))

    return fn


def _sample_ddim(diff, fn, noise):
    xx = torch.cat([noise, noise], 0)
    traj = []
    for k, i in enumerate(reversed(range(diff.num_steps))):
        out = fn(xx, diff.timestep_map[i])
        xx = diff.ddim_step(xx, i, out)
        traj.append(xx[: noise.shape[0]].clone())
    return traj


def fixture_traj():
    gen = make_gen(300)
    wpath = os.path.join(OUT_DIR, "dit_p2.weights.safetensors")
    sd, meta = load_safetensors(wpath)
    H = int(meta["num_heads"])
    model = DiT(sd, H)
    mc = model.cfg
    C, S = mc["in_channels"], mc["input_size"]
    N = len(TRAJ_LABELS)
    null = mc["num_classes"]
    fn = _cfg_model_fn(model, TRAJ_LABELS, null)
    out = OrderedDict()

    with torch.no_grad():
        # ---- DDIM eta=0, even respacing "10" ----
        steps = space_timesteps(1000, str(TRAJ_STEPS))
        diff = SpacedDiffusion(steps)
        noise = torch.randn(N, C, S, S, generator=gen)
        out["ddim.noise"] = noise
        out["ddim.timesteps"] = ts_tensor(steps)
        for k, xk in enumerate(_sample_ddim(diff, fn, noise)):
            out["ddim.x.%d" % k] = xk

        # ---- DDPM learned-range variance, same respacing ----
        dnoise = torch.randn(N, C, S, S, generator=gen)
        out["ddpm.noise"] = dnoise
        out["ddpm.timesteps"] = ts_tensor(steps)
        xx = torch.cat([dnoise, dnoise], 0)
        for k, i in enumerate(reversed(range(diff.num_steps))):
            z = torch.randn(N, C, S, S, generator=gen)
            mo = fn(xx, diff.timestep_map[i])
            xx = diff.ddpm_step(xx, i, mo, torch.cat([z, z], 0))
            out["ddpm.z.%d" % k] = z
            out["ddpm.x.%d" % k] = xx[:N].clone()

        # ---- DDIM with the "ddim10" integer-stride rule, same start noise ----
        steps_s = space_timesteps(1000, "ddim%d" % TRAJ_STEPS)
        out["ddim_stride.timesteps"] = ts_tensor(steps_s)
        traj_s = _sample_ddim(SpacedDiffusion(steps_s), fn, noise)
        out["ddim_stride.x.%d" % (TRAJ_STEPS - 1)] = traj_s[-1]

        # ---- schedule lists ----
        out["even50.timesteps"] = ts_tensor(space_timesteps(1000, "50"))
        out["even250.timesteps"] = ts_tensor(space_timesteps(1000, "250"))

        # ---- self-checks ----
        e250 = space_timesteps(1000, "250")
        assert e250[:3] == [0, 4, 8] and e250[-2:] == [995, 999] and len(e250) == 250, e250
        assert steps_s == list(range(0, 1000, 100)), steps_s
        for k, v in out.items():
            assert torch.isfinite(v).all(), "traj: non-finite %s" % k
        # DDIM: official ddim_sample re-derives eps from x0 and takes sqrt in float32; compare
        xo = torch.cat([noise, noise], 0)
        for i in reversed(range(diff.num_steps)):
            mo = fn(xo, diff.timestep_map[i])
            x0 = diff.predict_x0(xo, i, mo[:, :C])
            eps = (diff.k(diff.sqrt_recip_alphas_cumprod, i) * xo - x0) / diff.k(diff.sqrt_recipm1_alphas_cumprod, i)
            abp = diff.k(diff.alphas_cumprod_prev, i)
            xo = x0 * torch.sqrt(abp) + torch.sqrt(1 - abp) * eps
        d_off = _rel(xo[:N], out["ddim.x.%d" % (TRAJ_STEPS - 1)])
        # float64 pass of the whole DDIM / DDPM trajectories: how far float32 drifts (the C# side
        # should land within a small multiple of this)
        m64 = DiT(OrderedDict((k, v.double()) for k, v in sd.items()), H)
        fn64 = _cfg_model_fn(m64, TRAJ_LABELS, null)
        d64 = SpacedDiffusion(steps)
        d64.const_dtype = torch.float64
        t64 = _sample_ddim(d64, fn64, noise.double())
        e_ddim = max(_rel(out["ddim.x.%d" % k].double(), t64[k]) for k in range(TRAJ_STEPS))
        xx = torch.cat([dnoise, dnoise], 0).double()
        e_ddpm = 0.0
        for k, i in enumerate(reversed(range(d64.num_steps))):
            z = out["ddpm.z.%d" % k].double()
            xx = d64.ddpm_step(xx, i, fn64(xx, d64.timestep_map[i]), torch.cat([z, z], 0))
            e_ddpm = max(e_ddpm, _rel(out["ddpm.x.%d" % k].double(), xx[:N]))

    print("[traj] even10 steps %s | ddim10 steps %s | even50 %s...%s"
          % (steps, steps_s, space_timesteps(1000, "50")[:4], space_timesteps(1000, "50")[-2:]))
    print("[traj] float32 vs float64 trajectory, max over steps of max|diff|/max|ref|: "
          "ddim %.1e, ddpm %.1e" % (e_ddim, e_ddpm))
    print("[traj] |ddim.x.9| max %.3f  |ddpm.x.9| max %.3f  |ddim_stride.x.9| max %.3f | "
          "spec-DDIM vs official-ddim_sample float32 formulation: rel diff %.1e"
          % (float(out["ddim.x.9"].abs().max()), float(out["ddpm.x.9"].abs().max()),
             float(out["ddim_stride.x.9"].abs().max()), d_off))

    path = os.path.join(OUT_DIR, "traj.safetensors")
    save_safetensors(path, out, {
        "weights": "dit_p2.weights.safetensors",
        "num_heads": str(H),
        "steps": str(TRAJ_STEPS),
        "labels": json.dumps(TRAJ_LABELS),
        "null_label": str(null),
        "cfg_scale": repr(CFG_SCALE),
        "cfg_rule": "official: batch [z; z], labels [y; null], guide channels 0..2 only, keep first half",
        "schedule": "linear betas linspace(1e-4, 0.02, 1000) float64; constants float64 cast to float32",
        "ddim": "eta=0, respacing \"%d\" (even rule, round half to even); x_prev = x0*sqrt(acp_prev) + sqrt(1-acp_prev)*eps" % TRAJ_STEPS,
        "ddpm": "learned-range variance, respacing \"%d\"; x <- mean + [i!=0]*exp(0.5*logvar)*z, z for doubled batch = cat([z, z])" % TRAJ_STEPS,
        "ddim_stride": "eta=0, respacing \"ddim%d\" (stride 1000//%d), start noise = ddim.noise" % (TRAJ_STEPS, TRAJ_STEPS),
        "indexing": "timesteps ascending; step K (K=0..%d) uses timesteps[%d-K], x.K is the sample after step K (first half)" % (TRAJ_STEPS - 1, TRAJ_STEPS - 1),
        "model_timestep": "the model receives the original timestep (0..999) as float",
    })
    return [path]


# --------------------------------------------------------------------------------------------
# VAE decoder and the diffusers layout of dit_p2 (docs/formats.md)
# --------------------------------------------------------------------------------------------

VAE_GROUPS = 4            # the tiny decoder's channels (4, 8, 16) are too few for the real 32 groups
VAE_BLOCK_OUT = (4, 8, 16, 16)


def fixture_vae():
    """A tiny AutoencoderKL decoder with the real structure (4 up blocks of 3 resnets, conv_shortcut
    where the channel count changes, mid-block attention, upsamplers on all but the last block), so
    the latent 4x4x4 decodes to 3x32x32, with random weights and diffusers key names."""
    from vae_reference import VaeDecoder, tiny_vae_weights, SCALING_FACTOR, GN_EPS

    gen = make_gen(400)
    sd = tiny_vae_weights(gen, VAE_BLOCK_OUT)
    wpath = os.path.join(OUT_DIR, "vae_tiny.weights.safetensors")
    meta = {"format": "diffusers AutoencoderKL", "norm_num_groups": str(VAE_GROUPS),
            "block_out_channels": json.dumps(list(VAE_BLOCK_OUT)), "layers_per_block": "2",
            "scaling_factor": repr(SCALING_FACTOR)}
    save_safetensors(wpath, sd, meta)
    sd, meta2 = load_safetensors(wpath)
    assert meta2 == meta
    latent = torch.randn(2, 4, 4, 4, generator=gen)
    with torch.no_grad():
        res = VaeDecoder(sd, VAE_GROUPS).forward_all(latent)
        r64 = VaeDecoder(OrderedDict((k, v.double()) for k, v in sd.items()), VAE_GROUPS).forward_all(latent.double())
    ref = OrderedDict([("latent", latent), ("mid", res["mid"]), ("raw", res["raw"]), ("image", res["image"])])
    for k, v in ref.items():
        assert torch.isfinite(v).all(), "vae: non-finite %s" % k
    assert ref["image"].shape == (2, 3, 32, 32)
    err = {k: float((res[k].double() - r64[k]).abs().max()) for k in ("mid", "raw", "image")}
    raw = res["raw"]
    clamped = float(((raw < -1) | (raw > 1)).float().mean())
    assert 0.02 < clamped < 0.5, clamped  # the clamp is exercised, most pixels are not clamped
    assert err["image"] < 1e-3, err
    print("[vae] block_out %s, %d groups, latent %s -> image %s | |mid| rms %.2f, raw std %.2f, %.0f%% clamped "
          "| f32 vs f64 max abs err: mid %.1e, raw %.1e, image %.1e (of 255)"
          % (list(VAE_BLOCK_OUT), VAE_GROUPS, list(latent.shape), list(res["image"].shape),
             float(res["mid"].pow(2).mean().sqrt()), float(raw.std()), 100 * clamped, err["mid"], err["raw"], err["image"]))
    rpath = os.path.join(OUT_DIR, "vae_tiny.ref.safetensors")
    save_safetensors(rpath, ref, {
        "weights": "vae_tiny.weights.safetensors",
        "norm_num_groups": str(VAE_GROUPS),
        "gn_eps": repr(GN_EPS),
        "latent": "sampler output; the decoder divides it by %r first" % SCALING_FACTOR,
        "mid": "output of decoder.mid_block (resnet, attention, resnet)",
        "raw": "decoder.conv_out output (approximately [-1, 1])",
        "image": "clamp((raw + 1) / 2, 0, 1) * 255, float",
        "dtype": "float32 PyTorch %s results" % torch.__version__,
    })
    return [wpath, rpath]


def fixture_diffusers():
    """dit_p2's weights in the diffusers layout (folder with transformer/), for the layout test:
    both files must give bit-identical outputs through the C# DiT."""
    from diffusers_layout import official_to_diffusers, diffusers_config

    sd, meta = load_safetensors(os.path.join(OUT_DIR, "dit_p2.weights.safetensors"))
    cfg = DIT_CONFIGS["dit_p2"]
    folder = os.path.join(OUT_DIR, "dit_p2_diffusers", "transformer")
    wpath = os.path.join(folder, "diffusion_pytorch_model.safetensors")
    dsd = official_to_diffusers(sd)
    save_safetensors(wpath, dsd, {"format": "pt"})
    conf = diffusers_config(sd, int(meta["num_heads"]), cfg["num_classes"], cfg["input_size"])
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(conf, f, indent=2)
        f.write("\n")
    # self-check: the split is a pure relabelling (qkv = cat(to_q, to_k, to_v))
    q = torch.cat([dsd["transformer_blocks.1.attn1.to_%s.weight" % n] for n in "qkv"], 0)
    assert torch.equal(q, sd["blocks.1.attn.qkv.weight"])
    print("[diffusers] %d official tensors -> %d diffusers tensors (pos_embed dropped, embedders copied into %d blocks)"
          % (len(sd), len(dsd), conf["num_layers"]))
    return [wpath]


# Register new fixtures here. Order matters only for traj and diffusers, which read dit_p2's weights
# file. New fixtures go at the end so the existing files keep their bytes.
FIXTURES = [fixture_dit_p2, fixture_dit_p4, fixture_traj, fixture_vae, fixture_diffusers]


def summarize(paths):
    total = 0
    for p in paths:
        size = os.path.getsize(p)
        total += size
        tensors, meta = load_safetensors(p)
        with open(p, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        print("\n%s  %d bytes  sha256 %s" % (os.path.relpath(p, REPO_ROOT), size, sha))
        if meta:
            for k, v in meta.items():
                print("    meta %s = %s" % (k, v))
        for k, v in tensors.items():
            print("    %-45s %s" % (k, list(v.shape)))
    print("\ntotal %d bytes (%.2f MB)" % (total, total / 1e6))
    # everything, incl. the tiny VAE and dit_p2 repeated in the diffusers layout, under 5 MB (dit_p4 is F16)
    assert total < 5 * 1000 * 1000, "fixtures exceed 5 MB"


def main():
    paths = []
    for fx in FIXTURES:
        paths += fx()
    summarize(paths)


if __name__ == "__main__":
    sys.exit(main())

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
import struct
import sys
from collections import OrderedDict

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # vae_reference, diffusers_layout
import torch.nn.functional as F

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
# safetensors writer / reader (the format is small; see shared/spec/safetensors.md)
# --------------------------------------------------------------------------------------------

_DTYPES = {
    torch.float32: ("F32", 4, "<f4"),
    torch.float64: ("F64", 8, "<f8"),
    torch.float16: ("F16", 2, "<f2"),
    torch.int64: ("I64", 8, "<i8"),
    torch.int32: ("I32", 4, "<i4"),
    torch.uint8: ("U8", 1, "<u1"),
}
_DTYPES_BY_NAME = {v[0]: (k, v[1], v[2]) for k, v in _DTYPES.items()}


def save_safetensors(path, tensors, metadata=None):
    """tensors: ordered mapping name -> torch.Tensor (written in that order, packed contiguously).
    metadata: mapping str -> str, stored as "__metadata__"."""
    header = OrderedDict()
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("__metadata__ must map strings to strings")
        header["__metadata__"] = OrderedDict(metadata)
    blobs = []
    offset = 0
    for name, t in tensors.items():
        if name == "__metadata__" or name in header:
            raise ValueError("bad/duplicate tensor name %r" % name)
        t = t.detach().cpu().contiguous()
        dt, size, npdt = _DTYPES[t.dtype]
        data = t.numpy().astype(npdt, copy=False).tobytes(order="C")
        assert len(data) == t.numel() * size
        header[name] = OrderedDict(
            [("dtype", dt), ("shape", list(t.shape)), ("data_offsets", [offset, offset + len(data)])]
        )
        blobs.append(data)
        offset += len(data)
    hbytes = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    pad = (-len(hbytes)) % 8
    hbytes += b" " * pad
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    """Strict reader (the reference reader's rules); returns (OrderedDict name->tensor, metadata)."""
    with open(path, "rb") as f:
        raw = f.read()
    assert len(raw) >= 8, "header too small"
    (n,) = struct.unpack("<Q", raw[:8])
    assert n <= 100_000_000, "header too large"
    assert 8 + n <= len(raw), "invalid header length"
    hdr_text = raw[8 : 8 + n].decode("utf-8")
    assert hdr_text.startswith("{")
    hdr = json.loads(hdr_text, object_pairs_hook=OrderedDict)
    meta = hdr.pop("__metadata__", None)
    buf = raw[8 + n :]
    entries = sorted(hdr.items(), key=lambda kv: kv[1]["data_offsets"])
    pos = 0
    out = OrderedDict()
    for name, info in entries:
        b, e = info["data_offsets"]
        assert b == pos and e >= b, "invalid offset"
        tdt, size, npdt = _DTYPES_BY_NAME[info["dtype"]]
        numel = int(np.prod(info["shape"], dtype=np.int64)) if info["shape"] else 1
        assert e - b == numel * size, "invalid tensor info"
        arr = np.frombuffer(buf[b:e], dtype=npdt).reshape(info["shape"]).copy()
        out[name] = torch.from_numpy(arr)
        pos = e
    assert pos == len(buf), "incomplete buffer"
    # restore header order
    ordered = OrderedDict((k, out[k]) for k in hdr.keys())
    return ordered, meta


# --------------------------------------------------------------------------------------------
# DiT, exactly per shared/spec/dit.md (official facebookresearch/DiT forward)
# --------------------------------------------------------------------------------------------


def get_1d_sincos_pos_embed_from_grid(embed_dim, pos):
    omega = np.arange(embed_dim // 2, dtype=np.float64)
    omega /= embed_dim / 2.0
    omega = 1.0 / 10000 ** omega
    pos = pos.reshape(-1)
    out = np.einsum("m,d->md", pos, omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def get_2d_sincos_pos_embed(embed_dim, grid_size):
    """Official code: float64 math; first D/2 dims encode the column, last D/2 the row."""
    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.meshgrid(grid_w, grid_h)  # w first
    grid = np.stack(grid, axis=0).reshape([2, 1, grid_size, grid_size])
    emb_h = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[0])  # column j
    emb_w = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[1])  # row i
    return np.concatenate([emb_h, emb_w], axis=1)  # (T, D) float64


def timestep_embedding(t, dim=256, max_period=10000):
    """Official: float32 math (float64 only for the self-check's float64 pass)."""
    dt = torch.float64 if t.dtype == torch.float64 else torch.float32
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=dt) / half)
    args = t[:, None].to(dt) * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # cos first


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


def infer_dit_config(sd, num_heads):
    D = sd["pos_embed"].shape[2]
    T = sd["pos_embed"].shape[1]
    w = sd["x_embedder.proj.weight"]
    p, C = w.shape[2], w.shape[1]
    depth = 0
    while ("blocks.%d.attn.qkv.weight" % depth) in sd:
        depth += 1
    Cout = sd["final_layer.linear.weight"].shape[0] // (p * p)
    return dict(
        hidden=D, patch=p, in_channels=C, out_channels=Cout, depth=depth, heads=num_heads,
        input_size=int(round(math.sqrt(T))) * p, num_classes=sd["y_embedder.embedding_table.weight"].shape[0] - 1,
        learn_sigma=(Cout == 2 * C),
    )


class DiT:
    """Plain functional DiT over an official-key state dict (dtype follows the weights)."""

    def __init__(self, sd, num_heads):
        self.sd = sd
        self.cfg = infer_dit_config(sd, num_heads)
        self.H = num_heads
        self.zero_adaln = False  # self-check switch: force all adaLN outputs to zero

    def lin(self, x, name):
        return F.linear(x, self.sd[name + ".weight"], self.sd[name + ".bias"])

    @staticmethod
    def ln(x):
        return F.layer_norm(x, (x.shape[-1],), eps=1e-6)

    @staticmethod
    def modulate(x, shift, scale):
        return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)

    def adaln(self, c, name, chunks):
        m = self.lin(F.silu(c), name)
        if self.zero_adaln:
            m = torch.zeros_like(m)
        return m.chunk(chunks, dim=1)

    def embed(self, x):
        p = self.cfg["patch"]
        h = F.conv2d(x, self.sd["x_embedder.proj.weight"], self.sd["x_embedder.proj.bias"], stride=p)
        h = h.flatten(2).transpose(1, 2)  # (N, T, D), token = row * (W/p) + col
        return h + self.sd["pos_embed"]

    def cond(self, t, y):
        te = timestep_embedding(t.to(self.sd["pos_embed"].dtype))
        te = self.lin(F.silu(self.lin(te, "t_embedder.mlp.0")), "t_embedder.mlp.2")
        ye = self.sd["y_embedder.embedding_table.weight"][y.long()]
        return te + ye

    def attn(self, x, i):
        N, T, D = x.shape
        H = self.H
        hd = D // H
        qkv = self.lin(x, "blocks.%d.attn.qkv" % i)
        qkv = qkv.reshape(N, T, 3, H, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        a = (q @ k.transpose(-2, -1)) * (hd ** -0.5)
        a = a.softmax(dim=-1)
        o = (a @ v).transpose(1, 2).reshape(N, T, D)
        return self.lin(o, "blocks.%d.attn.proj" % i)

    def block(self, x, c, i):
        b = "blocks.%d." % i
        sh_msa, sc_msa, g_msa, sh_mlp, sc_mlp, g_mlp = self.adaln(c, b + "adaLN_modulation.1", 6)
        x = x + g_msa.unsqueeze(1) * self.attn(self.modulate(self.ln(x), sh_msa, sc_msa), i)
        h = self.modulate(self.ln(x), sh_mlp, sc_mlp)
        h = self.lin(F.gelu(self.lin(h, b + "mlp.fc1"), approximate="tanh"), b + "mlp.fc2")
        return x + g_mlp.unsqueeze(1) * h

    def final(self, x, c):
        shift, scale = self.adaln(c, "final_layer.adaLN_modulation.1", 2)  # shift first
        x = self.lin(self.modulate(self.ln(x), shift, scale), "final_layer.linear")
        return self.unpatchify(x)

    def unpatchify(self, x):
        C, p = self.cfg["out_channels"], self.cfg["patch"]
        h = w = int(round(math.sqrt(x.shape[1])))
        x = x.reshape(x.shape[0], h, w, p, p, C)
        x = torch.einsum("nhwpqc->nchpwq", x)
        return x.reshape(x.shape[0], C, h * p, w * p)

    def forward_all(self, x, t, y):
        """Returns dict with c, x_embed, block outputs, final."""
        res = OrderedDict()
        c = self.cond(t, y)
        h = self.embed(x)
        res["c"] = c
        res["x_embed"] = h
        for i in range(self.cfg["depth"]):
            h = self.block(h, c, i)
            res["block.%d" % i] = h
        res["final"] = self.final(h, c)
        return res

    def forward(self, x, t, y):
        return self.forward_all(x, t, y)["final"]

    def forward_from(self, h, c, start_block):
        for i in range(start_block, self.cfg["depth"]):
            h = self.block(h, c, i)
        return self.final(h, c)

    def forward_with_cfg(self, x, t, y, scale, guided_channels=3):
        """Official forward_with_cfg; guided_channels=3 is the released rule, C_in = guide all eps."""
        half = x[: len(x) // 2]
        combined = torch.cat([half, half], dim=0)
        out = self.forward(combined, t, y)
        eps, rest = out[:, :guided_channels], out[:, guided_channels:]
        cond_eps, uncond_eps = torch.split(eps, len(eps) // 2, dim=0)
        half_eps = uncond_eps + scale * (cond_eps - uncond_eps)
        eps = torch.cat([half_eps, half_eps], dim=0)
        return torch.cat([eps, rest], dim=1)


# --------------------------------------------------------------------------------------------
# Diffusion, exactly per shared/spec/diffusion.md (official gaussian_diffusion / respace)
# --------------------------------------------------------------------------------------------


def space_timesteps(num_timesteps, section_counts):
    """Official respace.space_timesteps; returns the sorted list of kept timesteps."""
    if isinstance(section_counts, str):
        if section_counts.startswith("ddim"):
            desired = int(section_counts[len("ddim"):])
            for i in range(1, num_timesteps):
                if len(range(0, num_timesteps, i)) == desired:
                    return sorted(set(range(0, num_timesteps, i)))
            raise ValueError("cannot create exactly %d steps with an integer stride" % desired)
        section_counts = [int(x) for x in section_counts.split(",")]
    size_per = num_timesteps // len(section_counts)
    extra = num_timesteps % len(section_counts)
    start_idx = 0
    all_steps = []
    for i, section_count in enumerate(section_counts):
        size = size_per + (1 if i < extra else 0)
        if size < section_count:
            raise ValueError("cannot divide section of %d steps into %d" % (size, section_count))
        frac_stride = 1 if section_count <= 1 else (size - 1) / (section_count - 1)
        cur_idx = 0.0
        for _ in range(section_count):
            all_steps.append(start_idx + round(cur_idx))  # Python round: half to even
            cur_idx += frac_stride
        start_idx += size
    return sorted(set(all_steps))


class SpacedDiffusion:
    """Linear-beta diffusion (float64 constants) respaced to `use_timesteps`."""

    def __init__(self, use_timesteps, num_timesteps=1000):
        base_betas = np.linspace(0.0001, 0.02, num_timesteps, dtype=np.float64)
        base_acp = np.cumprod(1.0 - base_betas, axis=0)
        self.timestep_map = []
        new_betas = []
        last = 1.0
        use = set(use_timesteps)
        for i, acp in enumerate(base_acp):
            if i in use:
                new_betas.append(1 - acp / last)
                last = acp
                self.timestep_map.append(i)
        betas = np.array(new_betas, dtype=np.float64)
        self.betas = betas
        alphas = 1.0 - betas
        self.alphas_cumprod = np.cumprod(alphas, axis=0)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.sqrt_alphas_cumprod_prev = np.sqrt(self.alphas_cumprod_prev)
        self.sqrt_one_minus_alphas_cumprod_prev = np.sqrt(1.0 - self.alphas_cumprod_prev)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1)
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_log_variance_clipped = np.log(
            np.append(self.posterior_variance[1], self.posterior_variance[1:])
        )
        self.log_betas = np.log(betas)
        self.posterior_mean_coef1 = betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - self.alphas_cumprod)
        self.num_steps = len(betas)
        self.const_dtype = torch.float32  # float64 only for the self-check's float64 pass

    def k(self, arr, i):
        """float64 constant -> float32 scalar tensor (the official _extract_into_tensor cast)."""
        return torch.tensor(float(arr[i]), dtype=torch.float64).to(self.const_dtype)

    def predict_x0(self, x, i, eps):
        return self.k(self.sqrt_recip_alphas_cumprod, i) * x - self.k(self.sqrt_recipm1_alphas_cumprod, i) * eps

    def ddpm_step(self, x, i, model_out, z):
        C = x.shape[1]
        eps, v = model_out[:, :C], model_out[:, C:]
        min_log = self.k(self.posterior_log_variance_clipped, i)
        max_log = self.k(self.log_betas, i)
        frac = (v + 1) / 2
        log_var = frac * max_log + (1 - frac) * min_log
        x0 = self.predict_x0(x, i, eps)
        mean = self.k(self.posterior_mean_coef1, i) * x0 + self.k(self.posterior_mean_coef2, i) * x
        nonzero = 1.0 if i != 0 else 0.0
        return mean + nonzero * torch.exp(0.5 * log_var) * z

    def ddim_step(self, x, i, model_out):
        """eta = 0, spec form: x_prev = x0*sqrt(acp_prev) + sqrt(1-acp_prev)*eps (model eps)."""
        C = x.shape[1]
        eps = model_out[:, :C]
        x0 = self.predict_x0(x, i, eps)
        return x0 * self.k(self.sqrt_alphas_cumprod_prev, i) + self.k(self.sqrt_one_minus_alphas_cumprod_prev, i) * eps


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
# VAE decoder (shared/spec/vae.md) and the diffusers layout of dit_p2 (shared/spec/dit.md)
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

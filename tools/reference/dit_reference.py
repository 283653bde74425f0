"""The plain-PyTorch DiT and diffusion the fixtures (and tools/bench) are computed with.

Official key names, the math of docs/formats.md, and a small
safetensors reader/writer (there is no safetensors package on these machines). Moved out of
make_fixtures.py unchanged, so the fixtures stay byte-identical.
"""

import json
import math
import os
import struct
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F


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
# DiT, exactly per docs/formats.md (official facebookresearch/DiT forward)
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
# Diffusion, exactly per docs/formats.md (official gaussian_diffusion / respace)
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

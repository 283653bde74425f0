"""A plain-PyTorch PixArt-alpha transformer and DPM-Solver++ (2M), written from the formulas of docs/pixart.md.

Diffusers key names (transformer/diffusion_pytorch_model.safetensors of PixArt-alpha/PixArt-XL-2-*),
no diffusers or PixArt code. The fixtures of tools/reference/make_pixart_fixtures.py are computed with it.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F


def sincos_1d(dim, pos):
    """(len(pos), dim) = [sin(pos * w_k) | cos(pos * w_k)], w_k = 10000^(-k / (dim/2)), float64."""
    omega = np.arange(dim // 2, dtype=np.float64) / (dim / 2.0)
    omega = 1.0 / 10000 ** omega
    out = np.einsum("m,d->md", pos.reshape(-1).astype(np.float64), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def pos_embed(dim, gh, gw, base_size, scale):
    """PixArt's interpolated 2-D table (gh*gw, dim): first half encodes the column, second half the row;
    coordinate along an axis of g tokens = index / (g / base_size) / scale."""
    rows = np.arange(gh, dtype=np.float64) / (gh / base_size) / scale
    cols = np.arange(gw, dtype=np.float64) / (gw / base_size) / scale
    cc, rr = np.meshgrid(cols, rows)  # (gh, gw) each; token = r * gw + c
    return np.concatenate([sincos_1d(dim // 2, cc), sincos_1d(dim // 2, rr)], axis=1)


def sinusoid(v, dim=256):
    """[cos(v * f_k) | sin(v * f_k)], f_k = exp(-ln(10000) k / 128), float32 math as the models do."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(0, half, dtype=torch.float32) / half)
    args = v[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


class PixArt:
    """config: dict of transformer/config.json (diffusers names); sd: diffusers state dict."""

    def __init__(self, sd, config):
        self.sd, self.c = sd, config
        self.heads = config["num_attention_heads"]
        self.hd = config["attention_head_dim"]
        self.D = self.heads * self.hd
        self.p = config["patch_size"]
        self.depth = config["num_layers"]
        s = config["sample_size"]
        self.scale = config.get("interpolation_scale") or max(s // 64, 1)
        self.micro = config.get("use_additional_conditions")
        if self.micro is None:
            self.micro = s == 128
        self.base = s // self.p

    def lin(self, x, name):
        return F.linear(x, self.sd[name + ".weight"], self.sd[name + ".bias"])

    @staticmethod
    def ln(x):
        return F.layer_norm(x, (x.shape[-1],), eps=1e-6)

    def embed_t(self, t, resolution=None, ar=None):
        """t_emb (B, D): timestep MLP, plus [emb(h) | emb(w) | emb(ar)] for the MS model."""
        e = "adaln_single.emb."
        temb = self.lin(F.silu(self.lin(sinusoid(t), e + "timestep_embedder.linear_1")), e + "timestep_embedder.linear_2")
        if self.micro:
            def mc(v, name):
                return self.lin(F.silu(self.lin(sinusoid(v), e + name + ".linear_1")), e + name + ".linear_2")
            temb = temb + torch.cat([mc(resolution[:, 0], "resolution_embedder"), mc(resolution[:, 1], "resolution_embedder"),
                                     mc(ar[:, 0], "aspect_ratio_embedder")], dim=1)
        return temb

    def captions(self, y):
        """caption projection (B, L, C_cap) -> (B, L, D)."""
        return self.lin(gelu_tanh(self.lin(y, "caption_projection.linear_1")), "caption_projection.linear_2")

    def attention(self, q, k, v, keep=None):
        """q (B, T, D), k/v (B, S, D), keep (B, S) bool: masked keys contribute nothing; a row whose keys are
        all masked outputs 0 (the engine's rule)."""
        B, T, D = q.shape
        S = k.shape[1]
        H, hd = self.heads, self.hd
        q = q.view(B, T, H, hd).transpose(1, 2)
        k = k.view(B, S, H, hd).transpose(1, 2)
        v = v.view(B, S, H, hd).transpose(1, 2)
        s = q @ k.transpose(-1, -2) / math.sqrt(hd)
        if keep is not None:
            s = s.masked_fill(~keep[:, None, None, :], float("-inf"))
            p = torch.softmax(s, dim=-1)
            p = torch.nan_to_num(p, nan=0.0)  # every key masked: no contribution
        else:
            p = torch.softmax(s, dim=-1)
        return (p @ v).transpose(1, 2).reshape(B, T, D)

    def block(self, i, x, t0, c, keep):
        b = "transformer_blocks.%d." % i
        B = x.shape[0]
        mod = self.sd[b + "scale_shift_table"][None] + t0.view(B, 6, self.D)
        sh1, sc1, g1, sh2, sc2, g2 = [mod[:, j][:, None] for j in range(6)]
        h = self.ln(x) * (1 + sc1) + sh1
        a = self.attention(self.lin(h, b + "attn1.to_q"), self.lin(h, b + "attn1.to_k"), self.lin(h, b + "attn1.to_v"))
        x = x + g1 * self.lin(a, b + "attn1.to_out.0")
        a = self.attention(self.lin(x, b + "attn2.to_q"), self.lin(c, b + "attn2.to_k"), self.lin(c, b + "attn2.to_v"), keep)
        x = x + self.lin(a, b + "attn2.to_out.0")
        h = self.ln(x) * (1 + sc2) + sh2
        x = x + g2 * self.lin(gelu_tanh(self.lin(h, b + "ff.net.0.proj")), b + "ff.net.2")
        return x

    def forward(self, x, t, y, mask, resolution=None, ar=None, trace=None):
        """x (B, C, H, W), t (B), y (B, L, C_cap), mask (B, L) {0,1} -> (B, C_out, H, W)."""
        B, C, Hh, Ww = x.shape
        p, D = self.p, self.D
        gh, gw = Hh // p, Ww // p
        tok = F.conv2d(x, self.sd["pos_embed.proj.weight"], self.sd["pos_embed.proj.bias"], stride=p)
        tok = tok.flatten(2).transpose(1, 2)
        tok = tok + torch.from_numpy(pos_embed(D, gh, gw, self.base, self.scale)).to(x.dtype)[None]
        temb = self.embed_t(t, resolution, ar)
        t0 = self.lin(F.silu(temb), "adaln_single.linear")
        c = self.captions(y)
        keep = mask > 0.5
        if trace is not None:
            trace["tokens"] = tok
        for i in range(self.depth):
            tok = self.block(i, tok, t0, c, keep)
            if trace is not None:
                trace["block%d" % i] = tok
        mod = self.sd["scale_shift_table"][None] + temb[:, None]
        shift, scale = mod[:, 0:1], mod[:, 1:2]
        out = self.lin(self.ln(tok) * (1 + scale) + shift, "proj_out")
        cout = out.shape[-1] // (p * p)
        out = out.view(B, gh, gw, p, p, cout).permute(0, 5, 1, 3, 2, 4).reshape(B, cout, gh * p, gw * p)
        return out


# ------------------------------------------------------------------------------ DPM-Solver++ (2M)

def dpm_schedule(steps):
    """(timesteps int, alpha, sigma, lambda) per step k = 0..steps (the last: alpha 1, sigma 0, lambda inf),
    diffusers' "linspace" spacing over the linear-beta schedule, float64."""
    betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
    acp = np.cumprod(1.0 - betas)
    ts = np.round(np.linspace(0, 999, steps + 1))[::-1][:-1].astype(np.int64)
    s = np.sqrt((1 - acp[ts]) / acp[ts])
    alpha = np.append(1 / np.sqrt(1 + s * s), 1.0)
    sigma = np.append(s / np.sqrt(1 + s * s), 0.0)
    lam = np.append(-np.log(s), np.inf)
    return ts, alpha, sigma, lam


def dpm_solver_2m(eps_fn, x, steps):
    """Runs the sampler; eps_fn(x, t_int) -> guided eps (same shape as x). Returns the list of x after each step."""
    ts, al, sg, lam = dpm_schedule(steps)
    prev = None
    traj = [x.clone()]
    for k in range(steps):
        eps = eps_fn(x, int(ts[k]))
        x0 = (x - sg[k] * eps) / al[k]
        h = lam[k + 1] - lam[k]
        em = math.expm1(-h) if math.isfinite(h) else -1.0
        if prev is None or k == steps - 1:
            x = (sg[k + 1] / sg[k]) * x - al[k + 1] * em * x0
        else:
            r = (lam[k] - lam[k - 1]) / h
            d1 = (x0 - prev) / r
            x = (sg[k + 1] / sg[k]) * x - al[k + 1] * em * x0 - 0.5 * al[k + 1] * em * d1
        prev = x0
        traj.append(x.clone())
    return traj

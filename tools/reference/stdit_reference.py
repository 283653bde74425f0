"""A plain-PyTorch STDiT (Open-Sora 1.0, STDiT-XL/2 and smaller), written from the facts of
../shared/spec/opensora.md and docs/opensora.md: official key names (the released .pth), no xformers, no
colossalai, no Open-Sora code. Runs on Debian's PyTorch 1.13 (no scaled_dot_product_attention).

Layouts: x (B, C, T, H, W); tokens (B, T*S, D) in (T, H, W) order; y (B, L, C_cap) T5 features; mask (B, L) {0, 1}.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

from pixart_reference import gelu_tanh, sinusoid


def sincos(dim, pos):
    """(M, dim) = [sin(pos * w_k) | cos(pos * w_k)], w_k = 10000^(-k / (dim/2)), float64 (positions as given)."""
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    out = np.einsum("m,d->md", np.asarray(pos).reshape(-1).astype(np.float64), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def spatial_table(dim, grid, scale):
    """(grid*grid, dim): coordinates arange(grid) / scale computed in float32 (numpy float32 arange);
    first half of the channels the column index, second half the row; token = row * grid + col."""
    axis = np.arange(grid, dtype=np.float32) / np.float32(scale)
    cols, rows = np.meshgrid(axis, axis)
    return np.concatenate([sincos(dim // 2, cols), sincos(dim // 2, rows)], axis=1)


def temporal_table(dim, frames, scale):
    """(frames, dim): positions arange(frames) / scale in float64."""
    return sincos(dim, np.arange(frames) / scale)


class STDiT:
    """sd: official state dict; cfg: dict with hidden_size, depth, num_heads, patch_size (pt, ph, pw),
    input_size (T, H, W) of the latent, space_scale, time_scale, in_channels."""

    def __init__(self, sd, cfg):
        self.sd, self.c = sd, cfg
        self.D = cfg["hidden_size"]
        self.heads = cfg["num_heads"]
        self.hd = self.D // self.heads
        self.depth = cfg["depth"]
        self.p = tuple(cfg["patch_size"])
        T, H, W = cfg["input_size"]
        self.nt, self.nh, self.nw = T // self.p[0], H // self.p[1], W // self.p[2]
        self.S = self.nh * self.nw
        self.pos = torch.from_numpy(spatial_table(self.D, self.nh, cfg["space_scale"])).float()
        self.tpe = torch.from_numpy(temporal_table(self.D, self.nt, cfg["time_scale"])).float()

    def lin(self, x, name):
        return F.linear(x, self.sd[name + ".weight"], self.sd[name + ".bias"])

    @staticmethod
    def ln(x):
        return F.layer_norm(x, (x.shape[-1],), eps=1e-6)

    def attend(self, q, k, v, keep=None):
        """q (B, N, D), k/v (B, M, D), keep (B, M) bool or None -> (B, N, D); softmax in fp32."""
        B, N, D = q.shape
        M = k.shape[1]
        H, hd = self.heads, self.hd
        q = q.view(B, N, H, hd).transpose(1, 2)
        k = k.view(B, M, H, hd).transpose(1, 2)
        v = v.view(B, M, H, hd).transpose(1, 2)
        s = (q * hd ** -0.5) @ k.transpose(-1, -2)
        if keep is not None:
            s = s.masked_fill(~keep[:, None, None, :], float("-inf"))
        p = torch.softmax(s.float(), dim=-1)
        return (p @ v).transpose(1, 2).reshape(B, N, D)

    def self_attn(self, x, name):
        D = self.D
        qkv = self.lin(x, name + ".qkv")
        a = self.attend(qkv[..., :D], qkv[..., D:2 * D], qkv[..., 2 * D:])
        return self.lin(a, name + ".proj")

    def block(self, i, x, t0, y, keep):
        b = "blocks.%d." % i
        B, T, S, D = x.shape[0], self.nt, self.S, self.D
        mod = self.sd[b + "scale_shift_table"][None] + t0.reshape(B, 6, D)
        sh1, sc1, g1, sh2, sc2, g2 = [mod[:, j:j + 1] for j in range(6)]   # (B, 1, D) each
        xm = self.ln(x) * (1 + sc1) + sh1
        xs = self.self_attn(xm.reshape(B * T, S, D), b + "attn").reshape(B, T * S, D)     # (B T) S D
        x = x + g1 * xs
        xt = x.reshape(B, T, S, D).permute(0, 2, 1, 3).reshape(B * S, T, D)               # (B S) T D, raw x
        if i == 0:
            xt = xt + self.tpe[None]
        xt = self.self_attn(xt, b + "attn_temp").reshape(B, S, T, D).permute(0, 2, 1, 3).reshape(B, T * S, D)
        x = x + g1 * xt                                                                    # the spatial gate again
        q = self.lin(x, b + "cross_attn.q_linear")
        kv = self.lin(y, b + "cross_attn.kv_linear")
        x = x + self.lin(self.attend(q, kv[..., :D], kv[..., D:], keep), b + "cross_attn.proj")
        h = self.ln(x) * (1 + sc2) + sh2
        x = x + g2 * self.lin(gelu_tanh(self.lin(h, b + "mlp.fc1")), b + "mlp.fc2")
        return x

    def forward(self, x, t, y, mask=None, trace=None):
        """x (B, C, T, H, W), t (B) original timesteps, y (B, L, C_cap), mask (B, L) or None -> (B, C_out, T, H, W)."""
        B = x.shape[0]
        D, (pt, ph, pw) = self.D, self.p
        tok = F.conv3d(x, self.sd["x_embedder.proj.weight"], self.sd["x_embedder.proj.bias"], stride=self.p)
        tok = tok.flatten(2).transpose(1, 2)                                    # (B, T*S, D), (T, H, W) order
        tok = (tok.reshape(B, self.nt, self.S, D) + self.pos[None, None]).reshape(B, self.nt * self.S, D)
        temb = self.lin(F.silu(self.lin(sinusoid(t), "t_embedder.mlp.0")), "t_embedder.mlp.2")
        t0 = self.lin(F.silu(temb), "t_block.1")
        c = self.lin(gelu_tanh(self.lin(y, "y_embedder.y_proj.fc1")), "y_embedder.y_proj.fc2")
        keep = None if mask is None else mask > 0.5
        if trace is not None:
            trace["tokens"] = tok
        for i in range(self.depth):
            tok = self.block(i, tok, t0, c, keep)
            if trace is not None:
                trace["block%d" % i] = tok
        mod = self.sd["final_layer.scale_shift_table"][None] + temb[:, None]
        out = self.lin(self.ln(tok) * (1 + mod[:, 1:2]) + mod[:, 0:1], "final_layer.linear")
        cout = out.shape[-1] // (pt * ph * pw)
        out = out.view(B, self.nt, self.nh, self.nw, pt, ph, pw, cout)
        out = out.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(B, cout, self.nt * pt, self.nh * ph, self.nw * pw)
        return out

    def forward_with_cfg(self, x, t, y, mask, scale):
        """Open-Sora 1.0's guided call: rows [cond; uncond] (x duplicated from its first half), guidance on
        eps channels 0..2 only, channel 3 and the variance channels from each half."""
        half = x[: len(x) // 2]
        out = self.forward(torch.cat([half, half]), t, y, mask)
        eps, rest = out[:, :3], out[:, 3:]
        cond, uncond = eps.chunk(2)
        guided = uncond + scale * (cond - uncond)
        return torch.cat([torch.cat([guided, guided]), rest], dim=1)

"""The AutoencoderKL decoder (sd-vae-ft-ema / -mse) in plain functional PyTorch, per docs/formats.md.

Works on a state dict with diffusers key names (post_quant_conv, decoder.*), so the same code runs the
real 50M-parameter decoder and the tiny random one the fixtures use. The structure (channel counts,
resnets per block, which blocks upsample, which resnets have a conv_shortcut) is read off the keys and
shapes, exactly as the C# VaeDecoder does; only the GroupNorm group count is a parameter (32 in the
real model; the tiny fixture uses fewer channels and 4 groups).

Semantics follow diffusers' AutoencoderKL.decode:
  z / 0.18215 → post_quant_conv (1×1) → conv_in (3×3) → mid_block (resnet, attention, resnet)
  → up_blocks (resnets, then nearest ×2 + 3×3 conv except the last) → GroupNorm → SiLU → conv_out
ResnetBlock2D: h = conv1(SiLU(norm1(x))); h = conv2(SiLU(norm2(h))); out = shortcut(x) + h
Attention: GroupNorm, then one head over (B, H·W, C) with scale 1/√C, to_out.0, + residual.
"""

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F

SCALING_FACTOR = 0.18215
GN_EPS = 1e-6

# (diffusers name, older diffusers name) of the mid-block attention's four Linears
ATTN_NAMES = [("to_q", "query"), ("to_k", "key"), ("to_v", "value"), ("to_out.0", "proj_attn")]


def count(sd, fmt):
    n = 0
    while (fmt % n) + ".conv1.weight" in sd:
        n += 1
    return n


class VaeDecoder:
    def __init__(self, sd, groups=32):
        self.sd = sd
        self.groups = groups

    def conv(self, x, name):
        w = self.sd[name + ".weight"]
        return F.conv2d(x, w, self.sd[name + ".bias"], padding=w.shape[-1] // 2)

    def gn(self, x, name):
        return F.group_norm(x, self.groups, self.sd[name + ".weight"], self.sd[name + ".bias"], eps=GN_EPS)

    def resnet(self, x, name):
        h = self.conv(F.silu(self.gn(x, name + ".norm1")), name + ".conv1")
        h = self.conv(F.silu(self.gn(h, name + ".norm2")), name + ".conv2")
        if name + ".conv_shortcut.weight" in self.sd:
            x = self.conv(x, name + ".conv_shortcut")
        return x + h

    def attention(self, x, name):
        B, C, H, W = x.shape
        h = self.gn(x, name + ".group_norm").reshape(B, C, H * W).transpose(1, 2)  # (B, HW, C)
        lin = []
        for new, old in ATTN_NAMES:
            key = name + "." + (new if name + "." + new + ".weight" in self.sd else old)
            w = self.sd[key + ".weight"]
            lin.append((w.reshape(w.shape[0], -1), self.sd[key + ".bias"]))
        q, k, v = (F.linear(h, w, b) for w, b in lin[:3])
        a = torch.softmax((q @ k.transpose(1, 2)) / math.sqrt(C), dim=-1)
        o = F.linear(a @ v, *lin[3])  # (B, HW, C)
        return x + o.transpose(1, 2).reshape(B, C, H, W)

    def forward_all(self, z):
        """Returns OrderedDict: mid (after the mid block), raw (conv_out, ≈[-1, 1]), image ([0, 255])."""
        res = OrderedDict()
        sd = self.sd
        x = self.conv(z / SCALING_FACTOR, "post_quant_conv")
        x = self.conv(x, "decoder.conv_in")
        x = self.resnet(x, "decoder.mid_block.resnets.0")
        x = self.attention(x, "decoder.mid_block.attentions.0")
        x = self.resnet(x, "decoder.mid_block.resnets.1")
        res["mid"] = x
        blocks = count(sd, "decoder.up_blocks.%d.resnets.0")
        for i in range(blocks):
            for j in range(count(sd, "decoder.up_blocks.%d.resnets.%%d" % i)):
                x = self.resnet(x, "decoder.up_blocks.%d.resnets.%d" % (i, j))
            if "decoder.up_blocks.%d.upsamplers.0.conv.weight" % i in sd:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
                x = self.conv(x, "decoder.up_blocks.%d.upsamplers.0.conv" % i)
        x = F.silu(self.gn(x, "decoder.conv_norm_out"))
        x = self.conv(x, "decoder.conv_out")
        res["raw"] = x
        res["image"] = ((x + 1) / 2).clamp(0, 1) * 255
        return res


def tiny_vae_weights(gen, block_out=(4, 8, 16, 16), layers_per_block=2, latent=4, out_channels=3):
    """Random weights with diffusers key names for a decoder shaped like sd-vae-ft-* but with
    block_out_channels `block_out` (the real one: 128, 256, 512, 512). Each up block has
    layers_per_block + 1 resnets, as in diffusers. Also writes quant_conv and one encoder tensor, as
    the real files hold them, so a loader has to ignore keys it does not need."""
    sd = OrderedDict()

    def conv(name, cout, cin, k, gain=1.0):
        sd[name + ".weight"] = torch.randn(cout, cin, k, k, generator=gen) * (gain / math.sqrt(cin * k * k))
        sd[name + ".bias"] = torch.randn(cout, generator=gen) * 0.05

    def norm(name, c):
        sd[name + ".weight"] = 1.0 + 0.2 * torch.randn(c, generator=gen)
        sd[name + ".bias"] = 0.2 * torch.randn(c, generator=gen)

    def linear(name, cout, cin):
        sd[name + ".weight"] = torch.randn(cout, cin, generator=gen) * (1.0 / math.sqrt(cin))
        sd[name + ".bias"] = torch.randn(cout, generator=gen) * 0.05

    def resnet(name, cin, cout):
        norm(name + ".norm1", cin)
        conv(name + ".conv1", cout, cin, 3)
        norm(name + ".norm2", cout)
        conv(name + ".conv2", cout, cout, 3, gain=0.5)
        if cin != cout:
            conv(name + ".conv_shortcut", cout, cin, 1)

    conv("encoder.conv_in", block_out[0], 3, 3)           # ignored by the decoder
    conv("quant_conv", 2 * latent, 2 * latent, 1)          # ignored by the decoder
    conv("post_quant_conv", latent, latent, 1)
    top = block_out[-1]
    conv("decoder.conv_in", top, latent, 3)
    resnet("decoder.mid_block.resnets.0", top, top)
    norm("decoder.mid_block.attentions.0.group_norm", top)
    for new, _ in ATTN_NAMES:
        linear("decoder.mid_block.attentions.0." + new, top, top)
    resnet("decoder.mid_block.resnets.1", top, top)
    rev = list(reversed(block_out))
    prev = rev[0]
    for i, ch in enumerate(rev):
        for j in range(layers_per_block + 1):
            resnet("decoder.up_blocks.%d.resnets.%d" % (i, j), prev if j == 0 else ch, ch)
        if i < len(rev) - 1:
            conv("decoder.up_blocks.%d.upsamplers.0.conv" % i, ch, ch, 3)
        prev = ch
    norm("decoder.conv_norm_out", block_out[0])
    conv("decoder.conv_out", out_channels, block_out[0], 3, gain=2.0)
    return sd

#!/usr/bin/env python3
"""Convert an official PixArt-alpha checkpoint (.pth) into a folder BlockDance.NET loads.

    python3 tools/convert/convert_pixart.py PixArt-XL-2-512x512.pth models/PixArt-XL-2-512 --image-size 512
    python3 tools/convert/convert_pixart.py PixArt-XL-2-1024-MS.pth models/PixArt-XL-2-1024-MS --image-size 1024

Input: the released state dict ({"state_dict": ...} or the bare dict; an "ema" entry with --entry ema).
Output: <out>/transformer/diffusion_pytorch_model.safetensors with the OFFICIAL key names (BlockDance.NET maps
them, docs/pixart.md), float32 (or --dtype f16), without the two buffers the model recomputes or does not use
(pos_embed, y_embedder.y_embedding), and <out>/transformer/config.json in diffusers' names: depth, heads (from
--num-heads, default 16 = PixArt-XL/2), patch, channels and caption width from the shapes; sample_size =
image size / 8; interpolation_scale from PixArt's table {256: 0.5, 512: 1, 1024: 2}; micro-conditions iff the
checkpoint has csize_embedder/ar_embedder. Add a vae/ folder (sd-vae-ft-ema, diffusers layout) for images.

Needs only PyTorch (the safetensors writer is tools/reference/dit_reference.py's).
"""

import argparse
import json
import os
import sys
from collections import OrderedDict

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from dit_reference import save_safetensors  # noqa: E402

SCALES = {256: 0.5, 512: 1, 1024: 2}
DROPPED = ("pos_embed", "y_embedder.y_embedding")


def fail(msg):
    print("convert_pixart: error: " + msg, file=sys.stderr)
    sys.exit(2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    ap.add_argument("--image-size", type=int, required=True, choices=sorted(SCALES))
    ap.add_argument("--num-heads", type=int, default=16)
    ap.add_argument("--entry", default="state_dict")
    ap.add_argument("--dtype", choices=("f32", "f16"), default="f32")
    a = ap.parse_args()
    try:
        obj = torch.load(a.checkpoint, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - one line for the user
        fail("%s: expected a PyTorch checkpoint, found %s" % (a.checkpoint, e))
    sd = obj.get(a.entry, obj) if isinstance(obj, dict) else None
    if not isinstance(sd, dict) or "x_embedder.proj.weight" not in sd:
        fail("%s: expected a PixArt state dict (x_embedder.proj.weight, blocks.*), found keys %s" % (a.checkpoint, list(obj)[:5]))
    sd = OrderedDict((k[7:] if k.startswith("module.") else k, v) for k, v in sd.items())
    D, cin, p, _ = sd["x_embedder.proj.weight"].shape
    depth = 0
    while "blocks.%d.attn.qkv.weight" % depth in sd:
        depth += 1
    if D % a.num_heads:
        fail("--num-heads %d: expected a divisor of the hidden size %d" % (a.num_heads, D))
    cout = sd["final_layer.linear.weight"].shape[0] // (p * p)
    micro = "csize_embedder.mlp.0.weight" in sd
    dt = torch.float16 if a.dtype == "f16" else torch.float32
    out = OrderedDict((k, v.to(dt).contiguous()) for k, v in sd.items() if k not in DROPPED)
    tdir = os.path.join(a.out, "transformer")
    os.makedirs(tdir, exist_ok=True)
    save_safetensors(os.path.join(tdir, "diffusion_pytorch_model.safetensors"), out,
                     {"format": "official PixArt", "source": os.path.basename(a.checkpoint)})
    config = OrderedDict([
        ("_class_name", "PixArtTransformer2DModel"), ("activation_fn", "gelu-approximate"), ("attention_bias", True),
        ("attention_head_dim", int(D // a.num_heads)), ("caption_channels", int(sd["y_embedder.y_proj.fc1.weight"].shape[1])),
        ("cross_attention_dim", int(D)), ("in_channels", int(cin)), ("interpolation_scale", SCALES[a.image_size]),
        ("norm_elementwise_affine", False), ("norm_eps", 1e-6), ("norm_type", "ada_norm_single"),
        ("num_attention_heads", a.num_heads), ("num_embeds_ada_norm", 1000), ("num_layers", depth),
        ("out_channels", int(cout)), ("patch_size", int(p)), ("sample_size", a.image_size // 8),
        ("use_additional_conditions", micro),
    ])
    with open(os.path.join(tdir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    print("wrote %s: depth %d, D %d, %d heads, %s, %d tensors" % (a.out, depth, D, a.num_heads,
                                                                 "micro-conditions" if micro else "no micro-conditions", len(out)))


if __name__ == "__main__":
    main()

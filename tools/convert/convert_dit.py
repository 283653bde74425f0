#!/usr/bin/env python3
"""Convert a released DiT checkpoint (.pt) into a safetensors file with the official key names.

    python3 tools/convert/convert_dit.py DiT-XL-2-256x256.pt models/DiT-XL-2-256.safetensors --model DiT-XL/2

Input: the pickled PyTorch state dict the DiT authors release (DiT-XL-2-256x256.pt, DiT-XL-2-512x512.pt),
or a checkpoint of their train.py ({"model", "ema", "opt", "args"}), whose "ema" entry is used (--entry
to pick another). A "module." prefix (DistributedDataParallel) is stripped.

Output: every tensor under its official key (pos_embed included), float32 by default (--dtype f16 halves
the file; BlockDance.NET converts to float32 when it loads), and __metadata__
{"format": "official", "num_heads": "16", "model": "DiT-XL/2", "source": "<input file name>"}.
The head count is the one thing tensor shapes cannot tell; it comes from --model (checked against the
checkpoint's depth and width) or, for a model that matches no preset, from --num-heads.

Needs only PyTorch (no safetensors package: the format is written here, see docs/formats.md).
"""

import argparse
import json
import os
import struct
import sys
from collections import OrderedDict

import torch

# name -> (depth, hidden size, heads); the suffix /p is the patch size (2, 4 or 8)
PRESETS = {"DiT-S": (12, 384, 6), "DiT-B": (12, 768, 12), "DiT-L": (24, 1024, 16), "DiT-XL": (28, 1152, 16)}
DTYPES = {"f32": (torch.float32, "F32"), "f16": (torch.float16, "F16")}


def fail(msg):
    print("convert_dit: error: " + msg, file=sys.stderr)
    sys.exit(2)


def load_state_dict(path, entry, trust_pickle):
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # training checkpoints hold an argparse.Namespace ("args"): not weights-only
        if not trust_pickle:
            fail("%s: cannot be read as plain weights (%s). If it is a train.py checkpoint from a source you trust, "
                 "rerun with --trust-pickle (unpickling can run code)." % (path, str(e).splitlines()[0]))
        obj = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(obj, dict):
        fail("%s: expected a state dict or a checkpoint dict, found %s" % (path, type(obj).__name__))
    if entry is None:
        entry = "ema" if "ema" in obj and isinstance(obj["ema"], dict) else None
    if entry is not None:
        if entry not in obj or not isinstance(obj[entry], dict):
            fail("%s: no state dict under '%s' (top-level keys: %s)" % (path, entry, ", ".join(list(obj)[:8])))
        print("using the checkpoint's '%s' entry" % entry)
        obj = obj[entry]
    sd = OrderedDict()
    for k, v in obj.items():
        if not torch.is_tensor(v):
            fail("%s: entry '%s' is a %s, not a tensor: not a state dict (pass --entry)" % (path, k, type(v).__name__))
        sd[k[len("module."):] if k.startswith("module.") else k] = v
    return sd


def describe(sd):
    if "x_embedder.proj.weight" not in sd:
        fail("no 'x_embedder.proj.weight': not a DiT state dict in the official naming (found e.g. %s)"
             % ", ".join(list(sd)[:4]))
    w = sd["x_embedder.proj.weight"]  # [D, C_in, p, p]
    depth = 0
    while "blocks.%d.attn.qkv.weight" % depth in sd:
        depth += 1
    return depth, int(w.shape[0]), int(w.shape[2])


def heads_for(args, depth, hidden, patch):
    if args.model:
        name, _, p = args.model.partition("/")
        if name not in PRESETS or p not in ("2", "4", "8"):
            fail("--model %s: expected one of %s with /2, /4 or /8 (e.g. DiT-XL/2)" % (args.model, ", ".join(PRESETS)))
        pd, ph, heads = PRESETS[name]
        if (pd, ph, int(p)) != (depth, hidden, patch):
            fail("--model %s expects depth %d, hidden %d, patch %s; the checkpoint has depth %d, hidden %d, patch %d"
                 % (args.model, pd, ph, p, depth, hidden, patch))
        if args.num_heads and args.num_heads != heads:
            fail("--num-heads %d contradicts --model %s (%d heads)" % (args.num_heads, args.model, heads))
        return heads
    if not args.num_heads:
        fail("pass --model (e.g. DiT-XL/2) or, for a model matching no preset, --num-heads")
    if hidden % args.num_heads:
        fail("--num-heads %d does not divide the hidden size %d" % (args.num_heads, hidden))
    return args.num_heads


def save_safetensors(path, sd, metadata, dtype):
    torch_dtype, name = DTYPES[dtype]
    header = OrderedDict([("__metadata__", metadata)])
    offset = 0
    tensors = []
    for k, v in sd.items():
        t = v.detach().to(torch_dtype).contiguous()
        n = t.numel() * t.element_size()
        header[k] = OrderedDict([("dtype", name), ("shape", list(t.shape)), ("data_offsets", [offset, offset + n])])
        tensors.append(t)
        offset += n
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((-len(h)) % 8)  # data starts 8-byte aligned, as the reference writer does
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for t in tensors:
            f.write(t.numpy().tobytes())  # little-endian on every platform PyTorch ships for
    os.replace(tmp, path)
    return offset


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", help="DiT .pt (state dict or train.py checkpoint)")
    ap.add_argument("output", help="output .safetensors")
    ap.add_argument("--model", help="preset name, e.g. DiT-XL/2 (checked against the shapes; sets num_heads)")
    ap.add_argument("--num-heads", type=int, help="head count for a model that matches no preset")
    ap.add_argument("--entry", help="checkpoint entry holding the state dict (default: 'ema' when present)")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="f32")
    ap.add_argument("--trust-pickle", action="store_true", help="allow full unpickling (train.py checkpoints)")
    args = ap.parse_args(argv)
    if not args.output.endswith(".safetensors"):
        fail("%s: the output name should end in .safetensors" % args.output)

    sd = load_state_dict(args.input, args.entry, args.trust_pickle)
    depth, hidden, patch = describe(sd)
    heads = heads_for(args, depth, hidden, patch)
    meta = OrderedDict([("format", "official"), ("num_heads", str(heads)),
                        ("model", args.model or "custom"), ("source", os.path.basename(args.input))])
    n = save_safetensors(args.output, sd, meta, args.dtype)
    params = sum(v.numel() for v in sd.values())
    print("wrote %s: %d tensors, %.1fM parameters (%s, %.1f MB); depth %d, hidden %d, patch %d, %d heads%s"
          % (args.output, len(sd), params / 1e6, args.dtype, n / 1e6, depth, hidden, patch, heads,
             "" if "pos_embed" in sd else " (no pos_embed: BlockDance.NET computes it)"))


if __name__ == "__main__":
    main()

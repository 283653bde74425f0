#!/usr/bin/env python3
"""Write the PyTorch checkpoint fixtures (torch.save, zip format) for the C# restricted unpickler.

Run from the repository root:

    /usr/bin/python3 tools/reference/make_torch_checkpoints.py

Needs Debian's python3-torch (1.13). Deterministic: a fixed seed; the zip entries carry no timestamps
that change between runs (torch writes its own zip records).

Files, all under tests/fixtures/torch/ (one tiny DiT: C_in 4, 4x4, p 2 (T 4), D 16, 2 heads, depth 1,
learn_sigma, 3 classes):

  tiny_dit.safetensors     the safetensors twin (F32, official keys, num_heads metadata)
  tiny_dit.pt              model.state_dict() as torch.save writes it: an OrderedDict with _metadata
  tiny_dit_train.pt        what the DiT repository's train.py saves: {"model", "ema", "opt", "args"};
                           "ema" holds the twin's weights, "model" different ones (so a loader that
                           took the wrong entry fails), "opt" an AdamW state dict after one step,
                           "args" an argparse.Namespace (a class the loader must not unpickle)
  tiny_dit_f16.pt          the twin's weights in float16 (HalfStorage)
  tiny_dit_bf16.pt         the twin's weights in bfloat16 (BFloat16Storage)
  hostile_os_system.pt     a pickle whose REDUCE calls os.system: must be refused, never run
"""

import argparse
import math
import os
import sys
from collections import OrderedDict

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dit_reference import save_safetensors  # noqa: E402
from make_fixtures import make_gen, random_dit_weights  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_DIR = os.path.join(REPO_ROOT, "tests", "fixtures", "torch")

TINY = dict(in_channels=4, input_size=4, patch=2, hidden=16, heads=2, depth=1,
            learn_sigma=True, num_classes=3)


def as_state_dict(tensors):
    """An OrderedDict carrying _metadata, as nn.Module.state_dict() returns it."""
    sd = OrderedDict((k, v.clone().contiguous()) for k, v in tensors.items())
    sd._metadata = OrderedDict([("", {"version": 1})])
    return sd


class Hostile:
    """Pickles as REDUCE(os.system, (command,)): unpickling it with pickle.load would run the command."""

    def __reduce__(self):
        return (os.system, ("touch /tmp/blockdance_pwned",))


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    gen = make_gen(900)
    ema = random_dit_weights(TINY, gen)
    save_safetensors(os.path.join(OUT_DIR, "tiny_dit.safetensors"), ema,
                     {"format": "official", "num_heads": str(TINY["heads"])})

    torch.save(as_state_dict(ema), os.path.join(OUT_DIR, "tiny_dit.pt"))

    # train.py: model (the raw weights, here the EMA plus noise), ema, opt, args
    model = OrderedDict((k, v + 0.01 * torch.randn(v.shape, generator=gen)) for k, v in ema.items())
    params = [torch.nn.Parameter(v.clone()) for v in model.values()]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0)
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)
    opt.step()
    args = argparse.Namespace(data_path="/data/imagenet", results_dir="results", model="DiT-XL/2",
                              image_size=256, num_classes=1000, epochs=1400, global_batch_size=256,
                              global_seed=0, vae="ema", num_workers=4, log_every=100, ckpt_every=50000)
    checkpoint = {"model": as_state_dict(model), "ema": as_state_dict(ema), "opt": opt.state_dict(), "args": args}
    torch.save(checkpoint, os.path.join(OUT_DIR, "tiny_dit_train.pt"))

    torch.save(as_state_dict(OrderedDict((k, v.half()) for k, v in ema.items())),
               os.path.join(OUT_DIR, "tiny_dit_f16.pt"))
    torch.save(as_state_dict(OrderedDict((k, v.bfloat16()) for k, v in ema.items())),
               os.path.join(OUT_DIR, "tiny_dit_bf16.pt"))

    torch.save({"pos_embed": ema["pos_embed"].clone(), "payload": Hostile()},
               os.path.join(OUT_DIR, "hostile_os_system.pt"))

    total = 0
    for name in sorted(os.listdir(OUT_DIR)):
        size = os.path.getsize(os.path.join(OUT_DIR, name))
        total += size
        print("%-28s %8d bytes" % (name, size))
    print("total %d bytes" % total)
    assert total < 400 * 1000, "torch fixtures exceed 400 KB"
    assert not math.isnan(float(sum(v.sum() for v in ema.values())))


if __name__ == "__main__":
    sys.exit(main())

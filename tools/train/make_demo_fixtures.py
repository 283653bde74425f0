#!/usr/bin/env python3
"""Reference samples of the text demos, from PyTorch's own sampling of the exported folders, for the engine tests
(tests/Demo): the engine must draw the same images and clips from the same prompts and noise.

    /usr/bin/python3 tools/train/make_demo_fixtures.py pixart models/pixart_mnist tests/fixtures/pixart_mnist_ref.safetensors
    /usr/bin/python3 tools/train/make_demo_fixtures.py stdit  models/stdit_mnist  tests/fixtures/stdit_mnist_ref.safetensors

pixart: prompts PIXART_PROMPTS, x_T "noise" (B, 1, 14, 14) from a fixed seed, DPM-Solver++ 2M 20 steps (linspace),
        CFG 4.5 on every channel against the empty prompt "" -> "sample" (B, 1, 14, 14), unclamped.
stdit:  prompts STDIT_PROMPTS, x_T "noise" (B, 1, T, H, W), "step_noise" (K, B, 1, T, H, W), IDDPM 20 respaced steps,
        learned-range variance, CFG 7 on channel 0 against the null caption with the prompt's mask -> "sample".
Metadata: the prompts (joined by "|"), steps, cfg, the folder's train_steps.
"""

import sys
from collections import OrderedDict
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "reference"))
from dit_reference import SpacedDiffusion, space_timesteps  # noqa: E402
from pixart_reference import dpm_solver_2m  # noqa: E402
from train_dit import write_safetensors  # noqa: E402

PIXART_PROMPTS = ["a handwritten seven", "the digit 3", "a thick zero", "number four"]
STDIT_PROMPTS = ["a four moving left", "the digit 7 going up"]
SEED = 20261202


@torch.no_grad()
def pixart(folder, out, steps=20, cfg=4.5):
    import train_pixart as tp
    model, tok = tp.load_export(folder)
    B = len(PIXART_PROMPTS)
    ids, mask = tok(PIXART_PROMPTS + [""] * B)
    y = tp.t5_encode(model.t5, tp.T5_CONFIG, ids, mask)
    x = torch.randn(B, 1, 14, 14, generator=torch.Generator().manual_seed(SEED))

    def eps_fn(xx, t):
        e = model.net.forward(torch.cat([xx, xx]), torch.full((2 * B,), float(t)), y, mask.float())
        return e[B:] + cfg * (e[:B] - e[B:])

    sample = dpm_solver_2m(eps_fn, x.clone(), steps)[-1]
    write(out, OrderedDict(noise=x, sample=sample), PIXART_PROMPTS, steps, cfg, folder / "transformer" / "diffusion_pytorch_model.safetensors")


@torch.no_grad()
def stdit(folder, out, steps=20, cfg=7.0):
    import train_stdit as ts
    model, tok = ts.load_export(folder)
    B = len(STDIT_PROMPTS)
    ids, mask = tok(STDIT_PROMPTS)
    y = model.captions(ids, mask, torch.zeros(B, dtype=torch.bool))
    ys = torch.cat([y, model.sd["y_embedder.y_embedding"][None].expand_as(y)])
    ms = torch.cat([mask, mask]).float()
    g = torch.Generator().manual_seed(SEED)
    shape = (B, 1, ts.FRAMES, ts.SIZE, ts.SIZE)
    x0 = torch.randn(shape, generator=g)
    z = torch.randn((steps,) + shape, generator=g)
    diff = SpacedDiffusion(space_timesteps(1000, str(steps)))
    x = x0.clone()
    for k, i in enumerate(reversed(range(steps))):
        o = model.net.forward(torch.cat([x, x]), torch.full((2 * B,), float(diff.timestep_map[i])), ys, ms)
        guided = torch.cat([o[B:, :1] + cfg * (o[:B, :1] - o[B:, :1]), o[:B, 1:]], dim=1)
        x = diff.ddpm_step(x, i, guided, z[k])
    write(out, OrderedDict(noise=x0, step_noise=z, sample=x), STDIT_PROMPTS, steps, cfg, folder / "model.safetensors")


def write(out, tensors, prompts, steps, cfg, weights):
    from train_dit import read_safetensors
    _, meta = read_safetensors(weights)
    write_safetensors(Path(out), tensors, OrderedDict(prompts="|".join(prompts), steps=str(steps), cfg=str(cfg),
                                                      train_steps=str(meta.get("train_steps", "?")), seed=str(SEED)))
    print(f"wrote {out}: " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in tensors.items()))


def main():
    kind, folder, out = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    torch.set_num_threads(2)
    {"pixart": pixart, "stdit": stdit}[kind](folder, out)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Learning-to-Cache (Ma et al., NeurIPS 2024) for the demo DiT: a router theta in [0, 1] per (step, block, branch)
trained over the frozen model, turned into a static schedule by a threshold at inference (`--cache l2c`).

    /usr/bin/python3 tools/train/train_l2c.py                    # -> models/l2c_router.safetensors (~minutes on 2 cores)
    /usr/bin/python3 tools/train/train_l2c.py --lam 0.02 --out /tmp/r.safetensors

What is trained (the method's rule in this engine's terms, docs/caching.md "Learning-to-Cache"):
- The frozen model is models/dit_mnist.safetensors sampled as the engine's default: DDIM 50 steps (t = 980, 960,
  ..., 0), classifier-free guidance 4 on eps channel 0 (the official rule capped at C_in), batch [cond; uncond].
- Each block has two residual branches, attention and MLP. The cache of a branch is its raw output (before the
  adaLN gate) at the previous step; reusing it adds the cached output times the *current* step's gate, as FORA and
  the engine's BlockOutputs do.
- Steps come in pairs: an even step k computes every branch and fills the cache, the odd step k + 1 may reuse it.
  So the cache a reuse reads is always exactly one step old, at training and at inference alike (a router trained
  on one-step-old caches but applied to runs of reuses would see errors it never learned; the pairing caps the
  saving at half the branch evaluations). theta is trained on the odd steps and fixed at 1 on the even ones.
- Router theta[k, l, b] = sigmoid(logit). At odd step k the student mixes every branch output as
  theta * fresh + (1 - theta) * cached(step k - 1); the teacher runs in full. Loss = mean squared error of the
  guided eps against the teacher's at step k (normalised by the teacher's mean eps^2) + lam * mean(theta): input
  invariant (one router for every sample and class), timestep variant.
- Training states are the teacher's own DDIM trajectories from fixed noises: the teacher's x_k and, for the cache,
  its branch outputs at x_{k-1}; only theta gets gradients.
At inference a branch at step k reuses its cache when theta[k, l, b] < threshold (default 0.5, the `--cache
l2c:threshold=` option); even steps always compute.

Output: safetensors with tensor "router" (steps, depth, 2) float32 = theta, [..., 0] attention, [..., 1] MLP;
metadata: steps, sampler, cfg, lam, iterations, samples, epochs, train_seconds, the model file.
"""

import argparse
import math
import sys
import time
from collections import OrderedDict
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from diffusion import Diffusion  # noqa: E402
from train_dit import CONFIG, make_model, modulate, read_safetensors, write_safetensors  # noqa: E402

REPO_ROOT = HERE.parent.parent
MODEL = REPO_ROOT / "models" / "dit_mnist.safetensors"
OUT = REPO_ROOT / "models" / "l2c_router.safetensors"
STEPS, CFG, NULL = 50, 4.0, CONFIG["num_classes"]


def forward_parts(model, x, t, y, theta=None, cache=None):
    """The DiT forward that exposes each block's raw branch outputs. theta (N, depth, 2) mixes fresh and cached
    outputs per row: theta * fresh + (1 - theta) * cache[l][b]. Returns (output (N, C_out, H, W), parts)."""
    h = model.x_embedder(x) + model.pos_embed
    c = model.t_embedder(t) + model.y_embedder(y, False)
    parts = []
    for l, blk in enumerate(model.blocks):
        sm, cm, gm, sp, cp, gp = blk.adaLN_modulation(c).chunk(6, dim=1)
        a = blk.attn(modulate(blk.norm1(h), sm, cm))
        if theta is not None:
            w = theta[:, l, 0].view(-1, 1, 1)
            a = w * a + (1 - w) * cache[l][0]
        h = h + gm.unsqueeze(1) * a
        m = blk.mlp(modulate(blk.norm2(h), sp, cp))
        if theta is not None:
            w = theta[:, l, 1].view(-1, 1, 1)
            m = w * m + (1 - w) * cache[l][1]
        h = h + gp.unsqueeze(1) * m
        parts.append((a, m))
    return model.unpatchify(model.final_layer(h, c)), parts


def guided_eps(out, n):
    """(n, 1, H, W) guided eps of the [cond; uncond] output: channel 0 (the official rule capped at C_in = 1)."""
    cond, uncond = out[:n, :1], out[n:, :1]
    return uncond + CFG * (cond - uncond)


def ddim_times():
    stride = 1000 // STEPS
    return list(range(0, 1000, stride))[::-1]      # step k = 0 first: t = 980, ..., 0 (the engine's even spacing)


@torch.no_grad()
def trajectories(model, n, seed):
    """x_k for k = 0..STEPS-1 of the teacher's guided DDIM from `n` seeded noises (classes cycled), (STEPS, n, 1, H, W)."""
    diff = Diffusion()
    ts = ddim_times()
    g = torch.Generator().manual_seed(seed)
    S = CONFIG["input_size"]
    x = torch.randn(n, 1, S, S, generator=g)
    y = torch.tensor([i % 10 for i in range(n)])
    yy = torch.cat([y, torch.full_like(y, NULL)])
    xs = []
    for k, t in enumerate(ts):
        xs.append(x.clone())
        out, _ = forward_parts(model, torch.cat([x, x]), torch.full((2 * n,), t), yy)
        eps = guided_eps(out, n)
        a = float(diff.acp[t])
        a_prev = float(diff.acp[ts[k + 1]]) if k + 1 < len(ts) else 1.0
        x0 = math.sqrt(1 / a) * x - math.sqrt(1 / a - 1) * eps
        x = x0 * math.sqrt(a_prev) + math.sqrt(1 - a_prev) * eps
    return torch.stack(xs), y


def train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = make_model()
    sd, _ = read_safetensors(MODEL)
    model.load_state_dict(sd)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    t_start = time.time()
    xs, labels = trajectories(model, args.samples, args.seed)
    print(f"teacher trajectories: {args.samples} samples x {STEPS} steps in {time.time() - t_start:.1f} s", flush=True)
    depth = CONFIG["depth"]
    logit = torch.full((STEPS, depth, 2), args.init, requires_grad=True)
    opt = torch.optim.Adam([logit], lr=args.lr)
    ts = ddim_times()
    g = torch.Generator().manual_seed(args.seed + 1)
    n = args.batch
    for it in range(args.iters):
        idx = torch.randint(0, args.samples, (n,), generator=g)
        k = 2 * torch.randint(0, STEPS // 2, (n,), generator=g) + 1        # odd steps: the second of each pair
        x_k, x_prev = xs[k, idx], xs[k - 1, idx]
        yy = torch.cat([labels[idx], torch.full((n,), NULL)])
        t_k = torch.tensor([ts[i] for i in k.tolist()])
        t_prev = torch.tensor([ts[i - 1] for i in k.tolist()])
        with torch.no_grad():
            _, cache = forward_parts(model, torch.cat([x_prev, x_prev]), torch.cat([t_prev, t_prev]), yy)
            target = guided_eps(forward_parts(model, torch.cat([x_k, x_k]), torch.cat([t_k, t_k]), yy)[0], n)
        theta = torch.sigmoid(logit)[torch.cat([k, k])]                     # (2n, depth, 2): one router for both halves
        out, _ = forward_parts(model, torch.cat([x_k, x_k]), torch.cat([t_k, t_k]), yy, theta, cache)
        mse = (guided_eps(out, n) - target).pow(2).mean() / target.pow(2).mean()
        loss = mse + args.lam * torch.sigmoid(logit[1::2]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (it + 1) % args.log_every == 0:
            th = torch.sigmoid(logit[1::2]).detach()
            print(f"iter {it + 1}: rel mse {float(mse):.5f}, mean theta {float(th.mean()):.3f}, "
                  f"below 0.5: {int((th < 0.5).sum())}/{th.numel()}", flush=True)
    seconds = time.time() - t_start
    theta = torch.sigmoid(logit).detach().clone()
    theta[0::2] = 1.0                                                      # even steps compute and fill the cache
    epochs = args.iters * n / (args.samples * (STEPS // 2))
    meta = OrderedDict(method="learning-to-cache", model=MODEL.name, steps=str(STEPS), sampler="ddim", cfg=str(CFG),
                       lam=str(args.lam), iterations=str(args.iters), batch=str(n), samples=str(args.samples),
                       epochs=f"{epochs:.2f}", train_seconds=str(int(round(seconds))),
                       layout="router (steps, depth, 2): theta per step, block, branch (0 attention, 1 MLP); "
                              "reuse where theta < threshold; even steps always 1 (they fill the cache)")
    write_safetensors(Path(args.out), OrderedDict(router=theta), meta)
    print(f"wrote {args.out}: {int((theta < 0.5).sum())} of {theta.numel()} branch evaluations below 0.5; "
          f"{seconds:.0f} s, {args.iters} iterations x batch {n} over {args.samples} trajectories ({epochs:.2f} epochs)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=600)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--lam", type=float, default=0.002)
    ap.add_argument("--init", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--out", default=str(OUT))
    train(ap.parse_args())


if __name__ == "__main__":
    main()

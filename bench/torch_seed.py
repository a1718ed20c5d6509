#!/usr/bin/python3
"""PyTorch baseline for dngen's benchmark: the seed article's MLP trained on Fashion-MNIST.

Trains the seed's DropoutNet (--dropout, default), NoDropoutNet (--no-dropout) or
BatchNormNet (--batchnorm: DropoutNet with batch norm before each hidden activation):
784-256-128-10, relu, dropout 0.5/0.3, cross entropy, Adam (lr 1e-3), batch 64, with
torch.manual_seed(--seed) before the model is built. Reports per epoch the training time,
the train accuracy (train-mode outputs, as the seed computes it) and the test accuracy,
then one machine-readable last line, e.g.

    RESULT dropout=1 threads=2 interop=1 epochs=1 sec_per_epoch=3.41 test_acc=0.8412 peak_rss_mb=680 ...

--sgd-cosine trains instead as specs/mlp_sgd.yaml does: SGD (lr 0.05, nesterov momentum 0.9,
weight decay 5e-4), a linear warmup over 500 steps then cosine annealing to 0 over the run
(LinearLR + CosineAnnealingLR, stepped per batch), and clip_grad_norm_(1.0) before each step.

Data pipelines:
  default          the IDX .gz files are read with gzip + numpy, normalized once into one
                   float tensor; each epoch indexes batches of 64 from torch.randperm.
  --seed-pipeline  the seed article's way: a Dataset whose __getitem__ converts one image
                   at a time the way torchvision's ToTensor + Normalize((0.5,), (0.5,)) do
                   (torchvision is not installed; this re-implements those steps in a few
                   lines), wrapped in a DataLoader(batch_size=64, shuffle=True). Shows what
                   the per-sample Python pipeline costs.

Threads: --threads sets torch.set_num_threads, --interop torch.set_num_interop_threads.
OpenBLAS must run single-threaded, or its threads and torch's oversubscribe the cores:

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/torch_seed.py --threads 2 --dropout

If OPENBLAS_NUM_THREADS is unset this script sets it to 1 before importing torch (the
RESULT line reports the value used). Run with Debian's /usr/bin/python3 (PyTorch 1.13).
"""

import argparse
import gzip
import os
import resource
import sys
import time
import warnings

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # must precede loading OpenBLAS

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

NORM_MEAN = 0.5
NORM_STD = 0.5


# ---- data ----------------------------------------------------------------------------------

def read_idx(path):
    """Reads an IDX file of unsigned bytes, gzip-compressed or not; returns a numpy array."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} data bytes, header says {int(np.prod(dims))}")
    return data.reshape(dims)


def load_split(data_dir, prefix):
    """(images [n, 28, 28] uint8, labels [n] uint8) of DIR/PREFIX-*-idx?-ubyte[.gz]."""
    out = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        base = os.path.join(data_dir, f"{prefix}-{kind}")
        out.append(read_idx(base if os.path.exists(base) else base + ".gz"))
    if len(out[0]) != len(out[1]):
        raise ValueError(f"{data_dir}/{prefix}: {len(out[0])} images but {len(out[1])} labels")
    return out


def normalized(images):
    """One float tensor [n, 784]: (x/255 - 0.5) / 0.5."""
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32))
    return x.div_(255).sub_(NORM_MEAN).div_(NORM_STD)  # in place: one copy of the data


class SeedStyleDataset(torch.utils.data.Dataset):
    """Per-sample transform as torchvision's MNIST + ToTensor + Normalize do it.

    __getitem__ makes a PIL image from the uint8 array (when PIL is installed, as
    torchvision's dataset does), converts it to a [1, 28, 28] float tensor in [0, 1], and
    normalizes it with mean 0.5, std 0.5.
    """

    def __init__(self, images, labels):
        self.images = torch.from_numpy(images.copy())
        self.labels = torch.from_numpy(labels.astype(np.int64))
        try:
            from PIL import Image
            self.pil = Image
        except ImportError:
            self.pil = None
        self.mean = torch.as_tensor([NORM_MEAN])
        self.std = torch.as_tensor([NORM_STD])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        img, target = self.images[index], int(self.labels[index])
        if self.pil is not None:
            arr = np.array(self.pil.fromarray(img.numpy(), mode="L"), np.uint8, copy=True)
        else:
            arr = img.numpy().copy()
        t = torch.from_numpy(arr).view(arr.shape[0], arr.shape[1], 1)   # ToTensor
        t = t.permute((2, 0, 1)).contiguous().to(torch.float32).div(255)
        t = t.clone().sub_(self.mean[:, None, None]).div_(self.std[:, None, None])  # Normalize
        return t, target


# ---- the seed's models -----------------------------------------------------------------------

class NoDropoutNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, 10)

    def forward(self, x):
        x = x.view(-1, 784)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


class DropoutNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.dropout1 = nn.Dropout(0.5)
        self.fc2 = nn.Linear(256, 128)
        self.dropout2 = nn.Dropout(0.3)
        self.fc3 = nn.Linear(128, 10)

    def forward(self, x):
        x = x.view(-1, 784)
        x = self.dropout1(torch.relu(self.fc1(x)))
        x = self.dropout2(torch.relu(self.fc2(x)))
        return self.fc3(x)


class BatchNormNet(DropoutNet):
    """DropoutNet with batch norm before each hidden activation (Linear -> BatchNorm1d -> ReLU
    -> Dropout), as specs/mlp_batchnorm.yaml; the modules are named as dngen names them."""

    def __init__(self):
        super().__init__()
        self.fc1_bn = nn.BatchNorm1d(256)
        self.fc2_bn = nn.BatchNorm1d(128)

    def forward(self, x):
        x = x.view(-1, 784)
        x = self.dropout1(torch.relu(self.fc1_bn(self.fc1(x))))
        x = self.dropout2(torch.relu(self.fc2_bn(self.fc2(x))))
        return self.fc3(x)


# ---- training --------------------------------------------------------------------------------

class SgdCosine:
    """specs/mlp_sgd.yaml's training: SGD with nesterov momentum, warmup + cosine per step,
    the gradient norm clipped to 1; zero_grad and step like an optimizer's."""

    def __init__(self, model, total_steps, warmup=500):
        self.params = list(model.parameters())
        self.opt = torch.optim.SGD(self.params, lr=0.05, momentum=0.9, nesterov=True,
                                   weight_decay=5e-4, foreach=False)
        warm = torch.optim.lr_scheduler.LinearLR(self.opt, start_factor=1 / warmup, end_factor=1.0,
                                                 total_iters=warmup - 1)
        cos = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=total_steps - warmup,
                                                         eta_min=0.0)
        self.sched = torch.optim.lr_scheduler.SequentialLR(self.opt, [warm, cos], milestones=[warmup])

    def zero_grad(self):
        self.opt.zero_grad()

    def step(self):
        nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        self.sched.step()


def train_step(model, opt, loss_fn, x, y):
    """One Adam step on a batch; returns the number of correct train-mode predictions."""
    opt.zero_grad()
    out = model(x)
    loss = loss_fn(out, y)
    loss.backward()
    opt.step()
    return out.argmax(dim=1).eq(y).sum().item()


def epoch_in_memory(model, opt, loss_fn, x, y, batch_size):
    perm = torch.randperm(len(x))
    correct = 0
    for start in range(0, len(x), batch_size):
        idx = perm[start:start + batch_size]
        correct += train_step(model, opt, loss_fn, x[idx], y[idx])
    return correct


def epoch_loader(model, opt, loss_fn, loader):
    correct = 0
    for x, y in loader:
        correct += train_step(model, opt, loss_fn, x, y)
    return correct


def test_accuracy(model, batches):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in batches:
            correct += model(x).argmax(dim=1).eq(y).sum().item()
            total += len(y)
    return correct / total


def loaded_blas():
    """Paths of BLAS libraries mapped into this process (Linux), to check OpenBLAS is used."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "blas" in line.lower()}
        return sorted(p for p in paths if p.startswith("/"))
    except OSError:
        return []


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist",
                    help="directory of the IDX files (default %(default)s)")
    ap.add_argument("--dropout", action=argparse.BooleanOptionalAction, default=True,
                    help="DropoutNet (default) or, with --no-dropout, NoDropoutNet")
    ap.add_argument("--batchnorm", action="store_true",
                    help="BatchNormNet: DropoutNet with batch norm before each hidden activation")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--interop", type=int, default=1,
                    help="torch.set_num_interop_threads (default 1)")
    ap.add_argument("--seed", type=int, default=42, help="torch.manual_seed (default 42)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--sgd-cosine", action="store_true",
                    help="SGD + warmup/cosine + clipping, as specs/mlp_sgd.yaml (default: Adam)")
    ap.add_argument("--seed-pipeline", action="store_true",
                    help="per-sample Dataset + DataLoader(shuffle=True), as the seed article")
    args = ap.parse_args()

    torch.set_num_interop_threads(args.interop)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    t0 = time.perf_counter()
    train_images, train_labels = load_split(args.data_dir, "train")
    test_images, test_labels = load_split(args.data_dir, "t10k")
    if args.seed_pipeline:
        train_loader = torch.utils.data.DataLoader(
            SeedStyleDataset(train_images, train_labels), batch_size=args.batch_size, shuffle=True)
        test_batches = torch.utils.data.DataLoader(
            SeedStyleDataset(test_images, test_labels), batch_size=1000, shuffle=False)
    else:
        x_train = normalized(train_images)
        y_train = torch.from_numpy(train_labels.astype(np.int64))
        x_test = normalized(test_images)
        y_test = torch.from_numpy(test_labels.astype(np.int64))
        test_batches = [(x_test[i:i + 1000], y_test[i:i + 1000]) for i in range(0, len(x_test), 1000)]
    load_sec = time.perf_counter() - t0

    if args.batchnorm and not args.dropout:
        sys.exit("torch_seed.py: --batchnorm is DropoutNet with batch norm; it cannot go with --no-dropout")
    model = BatchNormNet() if args.batchnorm else DropoutNet() if args.dropout else NoDropoutNet()
    if args.sgd_cosine:
        warnings.filterwarnings("ignore", message="The epoch parameter in `scheduler.step\\(\\)`")
        steps = args.epochs * -(-len(train_labels) // args.batch_size)
        opt = SgdCosine(model, steps)
    else:
        opt = torch.optim.Adam(model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    pipeline = "seed" if args.seed_pipeline else "memory"
    print(f"torch {torch.__version__}, {type(model).__name__}, threads={torch.get_num_threads()} "
          f"interop={torch.get_num_interop_threads()} OPENBLAS_NUM_THREADS={blas} "
          f"pipeline={pipeline}, data loaded in {load_sec:.2f} s")
    print(f"BLAS libraries loaded: {', '.join(loaded_blas()) or 'none found'}")

    train_secs = []
    train_acc = test_acc = 0.0
    n_train = len(train_labels)
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        if args.seed_pipeline:
            correct = epoch_loader(model, opt, loss_fn, train_loader)
        else:
            correct = epoch_in_memory(model, opt, loss_fn, x_train, y_train, args.batch_size)
        train_secs.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        test_acc = test_accuracy(model, test_batches)
        eval_sec = time.perf_counter() - t0
        train_acc = correct / n_train
        print(f"epoch {epoch}: train {train_secs[-1]:.2f} s, train_acc {train_acc:.4f}, "
              f"test_acc {test_acc:.4f} (test pass {eval_sec:.2f} s)", flush=True)

    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"RESULT dropout={int(args.dropout)} threads={args.threads} interop={args.interop} "
          f"epochs={args.epochs} sec_per_epoch={sum(train_secs) / len(train_secs):.2f} "
          f"test_acc={test_acc:.4f} peak_rss_mb={peak_rss_mb:.0f} train_acc={train_acc:.4f} "
          f"blas_threads={blas} pipeline={pipeline}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

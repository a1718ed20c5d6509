#!/usr/bin/python3
"""Times PyTorch's training step of the conv nets in specs/cnn.yaml and
specs/lenet.yaml (same layers, dropout, Adam lr 1e-3, batch 64) on
in-memory Fashion-MNIST batches, for bench/conv.sh.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/torch_conv.py --net cnn --threads 2 [--mkldnn 0|1]

Prints `RESULT net=... threads=... mkldnn=... ms_per_step=...` (the median
of 5 rounds of --steps steps, after 5 warm-up steps).

With --epochs E it trains instead, for the README's accuracy comparison:
E epochs over the whole training set (torch.manual_seed(42), batches of 64
in a torch.randperm order per epoch), printing per epoch the train loss and
accuracy (train mode, as dngen's trainer reports them) and the test
accuracy, and with --metrics FILE writing them as a CSV with dngen's
columns (epoch,train_loss,train_acc,test_acc), for `dngen plot`.
"""
import argparse
import gzip
import statistics
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Cnn(nn.Module):
    """pytorch/examples mnist/main.py's Net, as specs/cnn.yaml."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = self.dropout1(F.max_pool2d(x, 2))
        x = torch.flatten(x, 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return self.fc2(x)


class LeNet(nn.Module):
    """specs/lenet.yaml."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding="same")
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.drop2 = nn.Dropout2d(0.2)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(self.drop2(F.relu(self.conv2(x))), 2)
        x = torch.flatten(x, 1)
        x = self.drop(F.relu(self.fc1(x)))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def load_images(path, n):
    with gzip.open(path) as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16)[: n * 784]
    return torch.from_numpy(((raw.astype(np.float32) / 255.0 - 0.5) / 0.5).reshape(n, 1, 28, 28))


def load_labels(path):
    with gzip.open(path) as f:
        return torch.from_numpy(np.frombuffer(f.read(), dtype=np.uint8, offset=8).astype(np.int64))


def train_epochs(model, opt, a):
    """--epochs: whole epochs with test accuracy; a metrics CSV if asked."""
    x = load_images(f"{a.data_dir}/train-images-idx3-ubyte.gz", 60000)
    y = load_labels(f"{a.data_dir}/train-labels-idx1-ubyte.gz")
    tx = load_images(f"{a.data_dir}/t10k-images-idx3-ubyte.gz", 10000)
    ty = load_labels(f"{a.data_dir}/t10k-labels-idx1-ubyte.gz")
    rows = ["epoch,train_loss,train_acc,test_acc,time"]
    for epoch in range(1, a.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(60000)
        loss_sum, hits = 0.0, 0
        for i in range(0, 60000, 64):
            idx = order[i:i + 64]
            opt.zero_grad()
            out = model(x[idx])
            loss = F.cross_entropy(out, y[idx])
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            hits += (out.argmax(1) == y[idx]).sum().item()
        secs = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            test_hits = sum((model(tx[i:i + 1000]).argmax(1) == ty[i:i + 1000]).sum().item()
                            for i in range(0, 10000, 1000))
        line = (f"{epoch},{loss_sum / 60000:.4f},{hits / 60000:.4f},{test_hits / 10000:.4f},{secs:.3f}")
        print(f"epoch {epoch}: train_loss {loss_sum / 60000:.4f} train_acc {hits / 60000:.4f} "
              f"test_acc {test_hits / 10000:.4f} time {secs:.1f}s", flush=True)
        rows.append(line)
    if a.metrics:
        with open(a.metrics, "w") as f:
            f.write("\n".join(rows) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--net", choices=["cnn", "lenet"], required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mkldnn", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=0)
    ap.add_argument("--metrics")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.backends.mkldnn.enabled = bool(a.mkldnn)
    torch.manual_seed(42)
    model = Cnn() if a.net == "cnn" else LeNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    if a.epochs:
        train_epochs(model, opt, a)
        return
    x = load_images(f"{a.data_dir}/train-images-idx3-ubyte.gz", 64 * 8)
    y = torch.randint(0, 10, (64 * 8,))
    model.train()

    def step(i):
        xb, yb = x[(i % 8) * 64:(i % 8 + 1) * 64], y[(i % 8) * 64:(i % 8 + 1) * 64]
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()

    for i in range(5):
        step(i)
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        for i in range(a.steps):
            step(i)
        rounds.append((time.perf_counter() - t0) / a.steps)
    print(f"RESULT net={a.net} threads={a.threads} mkldnn={a.mkldnn} ms_per_step={1e3 * statistics.median(rounds):.3f}")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Times PyTorch's training step of the conv nets in specs/cnn.yaml and
specs/lenet.yaml (same layers, dropout, Adam lr 1e-3, batch 64) on
in-memory Fashion-MNIST batches, for bench/conv.sh.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/torch_conv.py --net cnn --threads 2 [--mkldnn 0|1]

Prints `RESULT net=... threads=... mkldnn=... ms_per_step=...` (the median
of 5 rounds of --steps steps, after 5 warm-up steps).
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--net", choices=["cnn", "lenet"], required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mkldnn", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.backends.mkldnn.enabled = bool(a.mkldnn)
    torch.manual_seed(42)
    model = Cnn() if a.net == "cnn" else LeNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
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

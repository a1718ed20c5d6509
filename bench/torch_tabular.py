#!/usr/bin/python3
"""The README's own-data examples, in PyTorch, on the same files as dngen.

Splits one of scikit-learn's bundled datasets (Debian: python3-sklearn) into
train.csv and test.csv (80/20, numpy seed 0; a header row, the target last)
in OUT, then trains the same MLP dngen's spec describes: features scaled by
the training rows' mean and standard deviation (ddof 0), Adam, the same
layers, batch size and epochs, and prints the test metrics.

  /usr/bin/python3 bench/torch_tabular.py breast_cancer OUT   # accuracy
  /usr/bin/python3 bench/torch_tabular.py diabetes OUT        # RMSE, MAE, R^2

bench/tabular.sh runs this and the dngen trainers side by side.
"""
import gzip
import sys

import numpy as np
import torch

DATA = "/usr/lib/python3/dist-packages/sklearn/datasets/data/"

# name: (hidden units, outputs, epochs, batch, lr, regression)
NETS = {
    "breast_cancer": (32, 2, 50, 32, 0.001, False),
    "diabetes": (32, 1, 150, 32, 0.01, True),
}


def load(name):
    """Features [n, k] and targets [n] as float64."""
    if name == "breast_cancer":
        a = np.loadtxt(DATA + "breast_cancer.csv", delimiter=",", skiprows=1)
        return a[:, :-1], a[:, -1]
    with gzip.open(DATA + "diabetes_data_raw.csv.gz") as f:
        x = np.loadtxt(f)
    with gzip.open(DATA + "diabetes_target.csv.gz") as f:
        y = np.loadtxt(f)
    return x, y


def split(x, y, out):
    """Writes out/train.csv and out/test.csv; returns the four arrays."""
    perm = np.random.RandomState(0).permutation(len(y))
    n_test = int(round(0.2 * len(y)))
    test, train = perm[:n_test], perm[n_test:]
    header = ",".join([f"f{i}" for i in range(x.shape[1])] + ["target"])
    for part, idx in (("train", train), ("test", test)):
        rows = np.column_stack([x[idx], y[idx]])
        np.savetxt(f"{out}/{part}.csv", rows, delimiter=",", header=header, comments="", fmt="%.10g")
    # what dngen reads: the values as written, as float32
    def reread(part):
        a = np.loadtxt(f"{out}/{part}.csv", delimiter=",", skiprows=1).astype(np.float32)
        return a[:, :-1], a[:, -1]
    return reread("train") + reread("test")


def train(name, xtr, ytr, xte, yte):
    hidden, outputs, epochs, batch, lr, regression = NETS[name]
    torch.manual_seed(0)
    mean, std = xtr.mean(0), xtr.std(0)
    std[std == 0] = 1
    xtr = torch.tensor((xtr - mean) / std)
    xte = torch.tensor((xte - mean) / std)
    net = torch.nn.Sequential(torch.nn.Linear(xtr.shape[1], hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, outputs))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    ttr = torch.tensor(ytr).reshape(-1, 1) if regression else torch.tensor(ytr).long()
    loss_fn = torch.nn.MSELoss() if regression else torch.nn.CrossEntropyLoss()
    for _ in range(epochs):
        perm = torch.randperm(len(ttr))
        for s in range(0, len(ttr), batch):
            i = perm[s:s + batch]
            opt.zero_grad()
            loss_fn(net(xtr[i]), ttr[i]).backward()
            opt.step()
    with torch.no_grad():
        out = net(xte)
    if not regression:
        acc = (out.argmax(1).numpy() == yte).mean()
        print(f"pytorch {name}: test_acc {acc:.4f}")
        return
    e = out[:, 0].numpy().astype(np.float64) - yte
    rmse, mae = np.sqrt((e * e).mean()), np.abs(e).mean()
    r2 = 1 - (e * e).sum() / ((yte - yte.mean()) ** 2).sum()
    print(f"pytorch {name}: test_rmse {rmse:.4f} test_mae {mae:.4f} test_r2 {r2:.4f}")


def main():
    name, out = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    xtr, ytr, xte, yte = split(*load(name), out)
    train(name, xtr, ytr, xte, yte)


if __name__ == "__main__":
    main()

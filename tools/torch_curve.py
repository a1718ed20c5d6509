#!/usr/bin/python3
"""Per-batch training loss of the seed DropoutNet in PyTorch, with dngen's dropout masks.

Trains the seed article's network (784-256-128-10, relu, dropout 0.5 after fc1 and 0.3
after fc2, Adam lr 1e-3, batch 64) on Fashion-MNIST for the first N optimizer steps and
prints `step,loss` CSV: the train-mode mean cross-entropy of each batch, before that
batch's update. Everything that is random in PyTorch's run is pinned to what dngen does:

  * no shuffle: step s uses batch s of the training set in file order (an epoch has
    ceil(60000/64) batches, the last one 32 rows; later epochs repeat the order);
  * dropout keep masks from dngen's Philox streams (see tools/torch_reference.py):
    seed --seed, step = the 0-based optimizer step, slot 1 for fc1 and 2 for fc2,
    row = row within the batch, unit = unit; survivors scaled by 1/(1-p);
  * initial weights from torch.manual_seed(--torch-seed) and nn.Linear's default init
    (or from --init FILE). --init-out FILE writes them as safetensors with the PyTorch
    names (fc1.weight [256, 784], ...), so dngen's trainer can start from the same
    weights (`--init FILE`) and its loss curve can be laid over this one.

Inputs are normalized as the seed does: (x/255 - 0.5) / 0.5.

Example (from the repository root):

    /usr/bin/python3 tools/torch_curve.py --steps 200 --init-out /tmp/init.safetensors \\
        --csv /tmp/torch_curve.csv
"""

import argparse
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ in tools/
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "bench")]
from torch_reference import (  # noqa: E402  (same directory)
    check_philox, dropout_mask, read_safetensors, write_safetensors, DEFAULT_KAT)
from torch_seed import load_split, normalized  # noqa: E402  (the benchmark's data loading)

class DropoutNet(nn.Module):
    """The seed article's DropoutNet, dropout applied with externally supplied masks."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, 10)

    def forward(self, x, masks, rates):
        h = torch.relu(self.fc1(x))
        if masks is not None:
            h = h * masks[0] / (1 - rates[0])
        h = torch.relu(self.fc2(h))
        if masks is not None:
            h = h * masks[1] / (1 - rates[1])
        return self.fc3(h)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist",
                    help="directory with train-images-idx3-ubyte[.gz] etc. (default %(default)s)")
    ap.add_argument("--steps", type=int, default=200, help="optimizer steps (default %(default)s)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=42, help="dngen seed of the dropout masks")
    ap.add_argument("--torch-seed", type=int, default=42, help="torch.manual_seed for the init")
    ap.add_argument("--no-dropout", action="store_true", help="the seed's NoDropoutNet instead")
    ap.add_argument("--init", metavar="FILE", help="start from these weights (safetensors)")
    ap.add_argument("--init-out", metavar="FILE", help="write the initial weights (safetensors)")
    ap.add_argument("--csv", metavar="FILE", help="also write the CSV here")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--kat", default=DEFAULT_KAT, help=argparse.SUPPRESS)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    check_philox(args.kat)

    images, labels = load_split(args.data_dir, "train")
    x_all = normalized(images)
    y_all = torch.from_numpy(labels.astype(np.int64))
    n = len(x_all)
    batches_per_epoch = (n + args.batch_size - 1) // args.batch_size

    torch.manual_seed(args.torch_seed)
    model = DropoutNet()
    if args.init:
        _, weights = read_safetensors(args.init)
        model.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32))
                               for k, v in weights.items()})
    if args.init_out:
        write_safetensors(args.init_out,
                          [(k, v.detach().numpy().copy()) for k, v in model.state_dict().items()],
                          {"torch_seed": args.torch_seed, "torch_version": torch.__version__,
                           "generator": "tools/torch_curve.py"})

    rates = (0.5, 0.3)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, foreach=False)
    rows = ["step,loss"]
    print(rows[0])
    for step in range(args.steps):
        start = (step % batches_per_epoch) * args.batch_size
        x = x_all[start:start + args.batch_size]
        y = y_all[start:start + args.batch_size]
        masks = None
        if not args.no_dropout:
            masks = [torch.from_numpy(dropout_mask(args.seed, step, 1 + k, len(x), units, p))
                     for k, (units, p) in enumerate(zip((256, 128), rates))]
        opt.zero_grad()
        loss = F.cross_entropy(model(x, masks, rates), y)
        loss.backward()
        opt.step()
        rows.append(f"{step},{loss.item():.9g}")
        print(rows[-1], flush=True)
    if args.csv:
        with open(args.csv, "w") as f:
            f.write("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

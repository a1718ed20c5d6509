#!/usr/bin/python3
"""Loads a dngen checkpoint of specs/mlp.yaml into the seed article's PyTorch
DropoutNet and prints its test accuracy, to check that the checkpoint is a
plain PyTorch state_dict (names, shapes, layout).

    /usr/bin/python3 tools/torch_check_checkpoint.py w.safetensors [DATA_DIR]

Needs Debian's python3-torch (run with /usr/bin/python3); reads safetensors
with the standard library (the safetensors package is not needed).
"""
import gzip
import json
import struct
import sys

import numpy as np
import torch
import torch.nn as nn


def load_safetensors(path):
    """F32 tensors of a safetensors file as a dict, and its metadata."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        array = np.frombuffer(data[begin:end], dtype=np.float32).reshape(info["shape"])
        tensors[name] = torch.from_numpy(array.copy())
    return tensors, header.get("__metadata__", {})


class DropoutNet(nn.Module):
    """The seed article's model, verbatim in structure."""

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


def read_idx(path):
    raw = open(path, "rb").read()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    data_dir = sys.argv[2] if len(sys.argv) == 3 else "/usr/share/datasets/fashion-mnist"
    state, meta = load_safetensors(sys.argv[1])
    model = DropoutNet()
    result = model.load_state_dict(state, strict=False)  # strict=False: optimizer state is extra
    print(f"format {meta.get('format')}, missing {result.missing_keys}, "
          f"extra tensors {len(result.unexpected_keys)}")
    images = read_idx(f"{data_dir}/t10k-images-idx3-ubyte.gz")[16:]
    labels = torch.tensor(list(read_idx(f"{data_dir}/t10k-labels-idx1-ubyte.gz")[8:]))
    x = torch.tensor(np.frombuffer(images, dtype=np.uint8).astype(np.float32)).view(-1, 784)
    x = (x / 255 - 0.5) / 0.5
    model.eval()
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == labels).float().mean().item()
    print(f"PyTorch test accuracy with this checkpoint: {accuracy:.4f}")


if __name__ == "__main__":
    main()

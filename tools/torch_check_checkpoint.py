#!/usr/bin/python3
"""Loads a dngen checkpoint of specs/mlp.yaml into the seed article's PyTorch
DropoutNet and prints its test accuracy, to check that the checkpoint is a
plain PyTorch state_dict (names, shapes, layout). With --batchnorm, a
checkpoint of specs/mlp_batchnorm.yaml into DropoutNet with BatchNorm1d
modules fc1_bn and fc2_bn after fc1 and fc2 (eval mode: running statistics).

    /usr/bin/python3 tools/torch_check_checkpoint.py [--batchnorm] w.safetensors [DATA_DIR]

Needs Debian's python3-torch (run with /usr/bin/python3); reads safetensors
with the standard library (the safetensors package is not needed).
"""
import os
import sys

import numpy as np
import torch

# The seed's model and data loading as the benchmark has them; the
# safetensors reader of the fixture tool.
here = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [here, os.path.join(here, "..", "bench")]
from torch_seed import BatchNormNet, DropoutNet, load_split, normalized  # noqa: E402
from torch_reference import read_safetensors  # noqa: E402


def main():
    args = sys.argv[1:]
    batchnorm = "--batchnorm" in args
    args = [a for a in args if a != "--batchnorm"]
    if len(args) not in (1, 2):
        sys.exit(__doc__)
    data_dir = args[1] if len(args) == 2 else "/usr/share/datasets/fashion-mnist"
    meta, arrays = read_safetensors(args[0])
    state = {name: torch.from_numpy(a.copy()) for name, a in arrays.items()}
    model = BatchNormNet() if batchnorm else DropoutNet()
    result = model.load_state_dict(state, strict=False)  # strict=False: optimizer state is extra
    print(f"format {meta.get('format')}, missing {result.missing_keys}, "
          f"extra tensors {len(result.unexpected_keys)}")
    images, labels = load_split(data_dir, "t10k")
    x = normalized(images)
    labels = torch.from_numpy(labels.astype(np.int64))
    model.eval()
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == labels).float().mean().item()
    print(f"PyTorch test accuracy with this checkpoint: {accuracy:.4f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Summarizes MC-dropout output of a dngen predictor against the true labels.

    ./mlp_predict t10k-images-idx3-ubyte.gz --mc 30 --seed 1 --format csv > mc.csv
    tools/mc_uncertainty.py mc.csv t10k-labels-idx1-ubyte.gz

Prints the accuracy of the MC mean prediction and the mean predictive entropy
and top-class std for correctly and wrongly classified samples. Standard
library only.
"""
import csv
import gzip
import statistics
import sys


def read_labels(path):
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if raw[:4] != b"\x00\x00\x08\x01":
        sys.exit(f"{path}: not an IDX label file")
    return raw[8:]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    labels = read_labels(sys.argv[2])
    groups = {True: {"entropy": [], "std": []}, False: {"entropy": [], "std": []}}
    for row in csv.DictReader(open(sys.argv[1])):
        right = int(row["class"]) == labels[int(row["index"])]
        groups[right]["entropy"].append(float(row["entropy"]))
        groups[right]["std"].append(float(row["std"]))
    n_right, n_wrong = len(groups[True]["entropy"]), len(groups[False]["entropy"])
    print(f"MC accuracy {n_right / (n_right + n_wrong):.4f} ({n_right} of {n_right + n_wrong})")
    for key in ("entropy", "std"):
        print(f"mean {key}: correct {statistics.mean(groups[True][key]):.3f}, "
              f"misclassified {statistics.mean(groups[False][key]):.3f}")


if __name__ == "__main__":
    main()

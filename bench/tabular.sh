#!/usr/bin/env bash
# The README's own-data examples: scikit-learn's breast cancer (classification)
# and diabetes (regression) CSVs, split 80/20 into train.csv and test.csv by
# bench/torch_tabular.py, which also trains the same MLP in PyTorch; then the
# dngen trainers of specs/breast_cancer.yaml and specs/diabetes.yaml on
# the same files. Prints both results per dataset.
#
#   bench/tabular.sh [build/dngen]
# Needs Debian's python3-sklearn (the data) and python3-torch.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dngen=$(realpath "${1:-$root/build/dngen}")
work=$(mktemp -d "${TMPDIR:-/tmp}/dngen-tabular.XXXXXX")
trap 'rm -rf "$work"' EXIT
for name in breast_cancer diabetes; do
  mkdir -p "$work/$name"
  /usr/bin/python3 "$root/bench/torch_tabular.py" "$name" "$work/$name"
  "$dngen" "$root/specs/$name.yaml" --standalone -o "$work/$name/$name.c"
  cc -std=c11 -O2 -march=native -fopenmp "$work/$name/$name.c" -o "$work/$name/$name" -lz -lm
  (cd "$work/$name" && "./$name" train --threads 1 | tail -n 1 | sed "s/^/dngen $name: /")
done

#!/usr/bin/env bash
# The main job: set up, generate the trainer for a spec (default: the seed
# article's network, specs/mlp.yaml), compile it, and train it on Fashion-MNIST.
#   tools/train.sh [SPEC.yaml] [trainer options...]
# Trainer options pass through, e.g. tools/train.sh specs/mlp.yaml --epochs 2
set -euo pipefail
cd "$(dirname "$0")/.."
spec=specs/mlp.yaml
if [ $# -gt 0 ] && [[ "$1" == *.yaml ]]; then spec=$1; shift; fi

tools/deps.sh --data
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target dngen dnrt >/dev/null

name=$(basename "$spec" .yaml)
./build/dngen "$spec" -o "build/$name.c"
cc -std=c11 -O2 -fopenmp -Iruntime "build/$name.c" -o "build/$name" build/runtime/libdnrt.a -lz -lm

data=/usr/share/datasets/fashion-mnist
echo "\$ build/$name train --data $data $*"
exec "build/$name" train --data "$data" "$@"

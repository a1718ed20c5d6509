#!/usr/bin/env bash
# Dataset loading speed (bench/csv_parse.c) on one core: a 100 MB numeric CSV
# table with 6-decimal numbers (the fast path), one with 17-digit numbers,
# and 100 MB of float32 features as .npy (mapped; from the page cache).
#   bench/csv_parse.sh [BUILD_DIR] [MB]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
mb=${2:-100}
out=$(mktemp "${TMPDIR:-/tmp}/csv_parse.XXXXXX")
trap 'rm -f "$out" "$out.npy" "$out.npy.y"' EXIT
cc -std=c11 -O2 -march=native -D_POSIX_C_SOURCE=200809L -I"$root/runtime" "$root/bench/csv_parse.c" \
  -o "$out" "$build/runtime/libdnrt.a" -fopenmp -lz -lm
OMP_NUM_THREADS=1 "$out" "$mb"
OMP_NUM_THREADS=1 "$out" "$mb" --long
OMP_NUM_THREADS=1 "$out" "$mb" --npy "$out.npy"

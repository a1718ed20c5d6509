#!/usr/bin/env bash
# Conv nets: the training step of specs/cnn.yaml (PyTorch's MNIST example
# net) and specs/lenet.yaml, generated trainer against PyTorch, in one run.
#
#   bench/conv.sh [--steps N]
#
# dngen: bench/step_bench.c on the generated trainer (median of 5 rounds of
# N steps, batch 64, Adam fused), 1 and 2 threads. PyTorch (Debian's 1.13,
# when installed): bench/torch_conv.py, 1 and 2 threads, oneDNN on and off;
# the best of the four. Seconds per epoch are ms per step x 937.5 (60000
# samples in batches of 64), without data loading or eval. GFLOP/s from the
# plan's FLOP per sample (`dngen summary`; fixed below), % of the FMA peak
# from bench/peak_flops.c; peak RSS of a 100-step training run with its
# eval. Writes bench/results_conv.csv; prints a table. bench/run.sh runs it
# after the dense nets.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=20
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    *) echo "usage: bench/conv.sh [--steps N]" >&2; exit 2 ;;
  esac
done
out=build-bench
csv=bench/results_conv.csv
cmake -S . -B "$out" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$out" -j"$(nproc)" --target dngen dnrt >/dev/null
CFLAGS="-std=c11 -O2 -march=native -fopenmp -Iruntime"
LIBS="$out/runtime/libdnrt.a -lz -lm"
# FLOP per sample of one training step (forward + both gradients; a
# multiply-add is 2), as generator/plan/plan.c counts them. cnn: conv1 2 x
# 0.389 M (no input gradient), conv2 3 x 21.234 M, pool1 2 x 0.037 M, fc1
# 3 x 2.359 M, fc2 3 x 0.003 M. lenet: conv1 2 x 0.235 M, pool1 2 x 0.005 M,
# conv2 3 x 0.480 M, pool2 2 x 0.002 M, fc1 3 x 0.096 M, fc2 3 x 0.020 M,
# fc3 3 x 0.002 M.
declare -A flop=([cnn]=71639040 [lenet]=2276528)

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(gcc --version | head -1)"
gcc -O2 -march=native -fopenmp bench/peak_flops.c -o "$out/peak_flops"
peak1=$("$out/peak_flops" 1 | awk '{print $3}')
peak2=$("$out/peak_flops" 2 | awk '{print $3}')
echo "kind,net,threads,value,unit" > "$csv"
row() { echo "$1,$2,$3,$4,$5" >> "$csv"; }
for net in cnn lenet; do
  "$out/dngen" "specs/$net.yaml" -o "$out/sb_$net.c"
  cc $CFLAGS -DDN_BENCH_SOURCE="\"$PWD/$out/sb_$net.c\"" -DDN_BENCH_MODEL="${net}_model" bench/step_bench.c \
    -o "$out/sb_$net" $LIBS
  for th in 1 2; do
    ms=$("$out/sb_$net" --threads "$th" --steps "$steps" --flop "${flop[$net]}" | sed -n 's/.*ms_per_step=\([0-9.]*\).*/\1/p')
    row dngen_ms "$net" "$th" "$ms" ms/step
  done
  # peak RSS of a training run (100 steps, then the test set's eval)
  cc $CFLAGS "$out/sb_$net.c" -o "$out/tr_$net" $LIBS
  rss=$(/usr/bin/time -f "rss_kb %M" "$out/tr_$net" train --data /usr/share/datasets/fashion-mnist --max-steps 100 \
        --threads 2 2>&1 | awk '/^rss_kb/ {printf "%.1f", $2 / 1024}')
  row rss "$net" 2 "$rss" MB
  if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    for th in 1 2; do
      for dnn in 1 0; do
        ms=$(OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/torch_conv.py --net "$net" --threads "$th" --mkldnn "$dnn" \
             --steps "$steps" | sed -n 's/.*ms_per_step=\([0-9.]*\).*/\1/p')
        row torch_ms "$net" "$th.$dnn" "$ms" ms/step
      done
    done
  fi
done

get() { awk -F, -v k="$1" -v n="$2" -v t="$3" '$1 == k && $2 == n && $3 == t {print $4}' "$csv"; }
echo
printf '%-6s %-8s %12s %12s %10s %9s\n' net threads "dngen s/ep" "GFLOP/s" "% of peak" ""
for net in cnn lenet; do
  for th in 1 2; do
    ms=$(get dngen_ms "$net" "$th"); peak=$peak1; [ "$th" = 2 ] && peak=$peak2
    gf=$(echo "${flop[$net]} * 64 / ($ms / 1000) / 1000000000" | bc -l)
    printf '%-6s %-8s %12.1f %12.1f %9.0f%%\n' "$net" "$th" "$(echo "$ms * 0.9375" | bc -l)" "$gf" \
      "$(echo "100 * $gf / $peak" | bc -l)"
  done
  best=""
  for k in 1.1 1.0 2.1 2.0; do
    v=$(get torch_ms "$net" "$k"); [ -z "$v" ] && continue
    if [ -z "$best" ] || [ "$(echo "$v < $best" | bc -l)" = 1 ]; then best=$v; bestk=$k; fi
  done
  echo "$net peak RSS of a training run (2 threads): $(get rss "$net" 2) MB"
  if [ -n "$best" ]; then
    d2=$(get dngen_ms "$net" 2)
    printf '%-6s PyTorch best (threads.oneDNN %s): %.1f s/epoch; dngen 2 threads is %.2fx that\n' "$net" "$bestk" \
      "$(echo "$best * 0.9375" | bc -l)" "$(echo "$best / $d2" | bc -l)"
  fi
done
echo "peak FMA: $peak1 GFLOP/s (1 thread), $peak2 (2 threads); wrote $csv"

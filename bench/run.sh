#!/usr/bin/env bash
# The benchmark: everything measured in one run on this machine, so the
# figures can be compared as ratios (the machine may be shared and noisy).
#
#   bench/run.sh [--epochs N] [--quick]
#
# Measures: the FP32 FMA peak (256- or 512-bit, whichever is faster) and
# the core-to-core latency; the generated seed trainer (specs/mlp.yaml,
# specs/mlp_nodropout.yaml, specs/mlp_batchnorm.yaml) on Fashion-MNIST with
# 1 and 2 threads (seconds per epoch as the trainer reports it, whole-run
# peak RSS); the training step and
# eval in isolation (GFLOP/s, % of peak) for the seed net and a wide one;
# dngen's own run time and the trainer's compile time; and, when Debian's
# python3-torch is installed, the seed's PyTorch model at its best thread
# setting. Writes bench/results.csv and bench/results.svg and prints a table;
# then (not with --quick) the conv nets, bench/conv.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=1
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) epochs=$2; shift 2 ;;
    --quick) epochs=1; quick=1; shift ;;
    *) echo "usage: bench/run.sh [--epochs N] [--quick]" >&2; exit 2 ;;
  esac
done
: "${quick:=0}"
data=/usr/share/datasets/fashion-mnist
out=build-bench
csv=bench/results.csv

tools/deps.sh --data
cmake -S . -B "$out" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$out" -j"$(nproc)" --target dngen dnrt >/dev/null
CFLAGS="-std=c11 -O2 -march=native -fopenmp -Iruntime"
LIBS="$out/runtime/libdnrt.a -lz -lm"

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(gcc --version | head -1)"
echo "kind,config,threads,value,unit" > "$csv"
row() { echo "$1,$2,$3,$4,$5" >> "$csv"; }

# ---- peak ----
gcc -O2 -march=native -fopenmp bench/peak_flops.c -o "$out/peak_flops"
# the faster of 256- and 512-bit FMA chains (peak_flops.c); its vector width too
p1=$("$out/peak_flops" 1)
p2=$("$out/peak_flops" 2)
peak1=$(echo "$p1" | awk '{print $3}')
peak2=$(echo "$p2" | awk '{print $3}')
width=$(echo "$p2" | sed -n 's/.*width=\([0-9]*\).*/\1/p')
row peak fma 1 "$peak1" GFLOP/s
row peak fma 2 "$peak2" GFLOP/s
row peak width 2 "$width" bits
# where the two CPUs sit: their cache-line round trip (core_latency.c)
gcc -O2 -fopenmp bench/core_latency.c -o "$out/core_latency"
lat=$("$out/core_latency" | awk '{print $2}') || lat=NA # needs 2 CPUs
row core_latency pair 2 "$lat" ns

# ---- generator and compile times ----
"$out/dngen" specs/mlp.yaml -o "$out/mlp.c"
"$out/dngen" specs/mlp_nodropout.yaml -o "$out/mlp_nodropout.c"
"$out/dngen" specs/mlp_batchnorm.yaml -o "$out/mlp_batchnorm.c"
t0=$(date +%s.%N)
for _ in $(seq 50); do "$out/dngen" specs/mlp.yaml -o "$out/mlp_again.c"; done
t1=$(date +%s.%N)
row tool dngen_ms 1 "$(echo "($t1 - $t0) * 1000 / 50" | bc -l | xargs printf '%.2f')" ms
t0=$(date +%s.%N)
cc $CFLAGS "$out/mlp.c" -o "$out/mlp" $LIBS
t1=$(date +%s.%N)
row tool compile_s 1 "$(echo "$t1 - $t0" | bc -l | xargs printf '%.2f')" s
cc $CFLAGS "$out/mlp_nodropout.c" -o "$out/mlp_nodropout" $LIBS
cc $CFLAGS "$out/mlp_batchnorm.c" -o "$out/mlp_batchnorm" $LIBS

# ---- whole epochs on Fashion-MNIST ----
# sec/epoch: the trainer's per-epoch "time" (training only, no eval), the
# median over $reps runs; the configurations take turns, so load that comes
# and goes hits them alike.
reps=5
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
declare -A secs
for rep in $(seq "$reps"); do
  for net in mlp mlp_nodropout mlp_batchnorm; do
    for th in 1 2; do
      log=$(/usr/bin/time -f "rss_kb %M" "$out/$net" train --data "$data" --epochs "$epochs" --threads "$th" 2>&1)
      secs[$net.$th]+="$(echo "$log" | awk '/^epoch/ {for (i = 1; i <= NF; i++) if ($i == "time") {t += $(i + 1); n++}} END {printf "%.3f", t / n}') "
      if [ "$rep" = 1 ]; then
        row rss "$net" "$th" "$(echo "$log" | awk '/^rss_kb/ {printf "%.1f", $2 / 1024}')" MB
        row test_acc "$net" "$th" "$(echo "$log" | awk '/^epoch/ {for (i = 1; i <= NF; i++) if ($i == "test_acc") a = $(i + 1)} END {print a}')" fraction
      fi
    done
  done
done
for key in $(printf "%s\n" "${!secs[@]}" | sort); do
  row epoch "${key%.*}" "${key#*.}" "$(echo "${secs[$key]}" | tr ' ' '\n' | grep . | median)" s/epoch
done
# ---- a busy machine: one other process spinning on the last CPU ----
# seconds per epoch (the last of 3: the adaptive team settles in the first)
# with --threads 1, --threads 2 and the default (adaptive, runtime/dn_threads.c)
if [ "$(nproc)" -ge 2 ]; then
  busy_cpu=$(($(nproc) - 1))
  taskset -c "$busy_cpu" sh -c 'while :; do :; done' &
  busy_pid=$!
  for th in 1 2 adaptive; do
    args="--threads $th"; [ "$th" = adaptive ] && args=""
    # shellcheck disable=SC2086 # $args is a word list by design
    t=$("$out/mlp" train --data "$data" --epochs 3 $args | awk '/^epoch 3/ {for (i = 1; i <= NF; i++) if ($i == "time") print $(i + 1)}')
    row busy_epoch mlp "$th" "${t%s}" s/epoch
  done
  kill "$busy_pid"
  wait "$busy_pid" 2>/dev/null || true
fi

# again after the epochs: a VM may move its CPUs apart or together meanwhile
lat_end=$("$out/core_latency" | awk '{print $2}') || lat_end=NA
row core_latency after_epochs 2 "$lat_end" ns

# ---- kernels in isolation (step_bench: median of 5 rounds) ----
bench_one() { # net spec threads [args...]
  local net=$1 spec=$2 th=$3; shift 3
  "$out/dngen" "$spec" -o "$out/sb_$net.c"
  cc $CFLAGS -DDN_BENCH_SOURCE="\"$PWD/$out/sb_$net.c\"" -DDN_BENCH_MODEL="${net}_model" bench/step_bench.c \
    -o "$out/sb_$net" $LIBS
  "$out/sb_$net" --threads "$th" "$@" | sed -n 's/.*gflops=\([0-9.]*\).*/\1/p'
}
cat > "$out/wide.yaml" <<'EOF'
name: wide
input: 784
layers:
  - {units: 2048, activation: relu, dropout: 0.5}
  - {units: 2048, activation: relu, dropout: 0.3}
  - {units: 10, activation: softmax}
EOF
for th in 1 2; do
  row step_gflops mlp "$th" "$(bench_one mlp specs/mlp.yaml "$th")" GFLOP/s
  row eval_gflops mlp "$th" "$(bench_one mlp specs/mlp.yaml "$th" --eval --batch 1000 --steps 10)" GFLOP/s
  row step_gflops wide "$th" "$(bench_one wide "$out/wide.yaml" "$th" --steps 10)" GFLOP/s
done

# ---- PyTorch, when installed ----
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  declare -A tsecs
  for rep in $(seq "$reps"); do
    for dd in --dropout --no-dropout --batchnorm; do
      net=mlp; [ "$dd" = --no-dropout ] && net=mlp_nodropout; [ "$dd" = --batchnorm ] && net=mlp_batchnorm
      for th in 1 2; do
        res=$(OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/torch_seed.py "$dd" --threads "$th" --epochs "$epochs" \
              --data-dir "$data" | grep "^RESULT")
        tsecs[$net.$th]+="$(echo "$res" | sed -n 's/.*sec_per_epoch=\([0-9.]*\).*/\1/p') "
        [ "$rep" = 1 ] && row torch_rss "$net" "$th" "$(echo "$res" | sed -n 's/.*peak_rss_mb=\([0-9.]*\).*/\1/p')" MB
      done
    done
  done
  for key in $(printf "%s\n" "${!tsecs[@]}" | sort); do
    row torch_epoch "${key%.*}" "${key#*.}" "$(echo "${tsecs[$key]}" | tr ' ' '\n' | grep . | median)" s/epoch
  done
fi

# ---- table ----
get() { awk -F, -v k="$1" -v c="$2" -v t="$3" '$1 == k && $2 == c && $3 == t {print $4}' "$csv"; }
echo
printf '%-14s %-8s %12s %12s %10s %9s %10s\n' net threads "dngen s/ep" "torch s/ep" speedup "GFLOP/s" "% of peak"
for net in mlp mlp_nodropout mlp_batchnorm; do
  for th in 1 2; do
    s=$(get epoch "$net" "$th"); ts=$(get torch_epoch "$net" "$th")
    peak=$peak1; [ "$th" = 2 ] && peak=$peak2
    gf=$(echo "60.4 / $s" | bc -l)
    sp="-"; [ -n "$ts" ] && sp=$(printf '%.1fx' "$(echo "$ts / $s" | bc -l)")
    printf '%-14s %-8s %12.3f %12s %10s %9.1f %9.0f%%\n' "$net" "$th" "$s" "${ts:--}" "$sp" "$gf" \
      "$(echo "100 * $gf / $peak" | bc -l)"
  done
done
echo
echo "peak FMA: $peak1 GFLOP/s (1 thread), $peak2 (2 threads), with $width-bit vectors"
echo "  ($(echo "$p2" | cut -d' ' -f4-)); core-to-core latency $lat ns, $lat_end ns after the epochs"
if [ "$lat" != NA ] && [ "$lat_end" != NA ] && [ $((lat > 2 * lat_end || lat_end > 2 * lat)) = 1 ]; then
  echo "  warning: the core-to-core latency changed during the run; its 2-thread figures mix two machine states"
fi
echo "training step alone (seed net, batch 64): $(get step_gflops mlp 1) GFLOP/s on 1 thread, $(get step_gflops mlp 2) on 2"
echo "eval alone (batch 1000): $(get eval_gflops mlp 1) / $(get eval_gflops mlp 2) GFLOP/s; wide 784-2048-2048-10 step: $(get step_gflops wide 1) / $(get step_gflops wide 2)"
echo "busy machine (another process spinning on one CPU), seed trainer s/epoch: 1 thread $(get busy_epoch mlp 1)," \
  "2 threads $(get busy_epoch mlp 2), adaptive (default) $(get busy_epoch mlp adaptive)"
echo "peak RSS, seed trainer, 2 threads: $(get rss mlp 2) MB (PyTorch: $(get torch_rss mlp 2) MB)"
echo "dngen on the seed spec: $(get tool dngen_ms 1) ms; compiling the trainer at -O2: $(get tool compile_s 1) s"
echo "(60.4 GFLOP per epoch = 1.007 MFLOP per sample x 60000; see PERF-NOTES)"

# ---- chart: seconds per epoch, dngen vs PyTorch ----
awk -F, '
  BEGIN { n = 0 }
  ($1 == "epoch" || $1 == "torch_epoch") { lab[n] = ($1 == "epoch" ? "dngen " : "PyTorch ") $2 " " $3 "t"; v[n] = $4; if ($4 > mx) mx = $4; n++ }
  END {
    w = 760; bh = 26; h = 60 + n * (bh + 8)
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"13\">\n", w, h
    printf "<text x=\"10\" y=\"22\" font-size=\"16\">Seconds per Fashion-MNIST epoch (shorter is better)</text>\n"
    for (i = 0; i < n; i++) {
      y = 40 + i * (bh + 8); len = (w - 330) * v[i] / mx
      col = (lab[i] ~ /^dngen/) ? "#2a7ab9" : "#d9822b"
      printf "<text x=\"10\" y=\"%d\">%s</text>\n", y + 18, lab[i]
      printf "<rect x=\"230\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n", y, len, bh, col
      printf "<text x=\"%.1f\" y=\"%d\">%.2f s</text>\n", 236 + len, y + 18, v[i]
    }
    print "</svg>"
  }' "$csv" > bench/results.svg
echo "wrote $csv and bench/results.svg"

# ---- conv nets (specs/cnn.yaml, specs/lenet.yaml), in the same run ----
[ "$quick" = 1 ] || bench/conv.sh

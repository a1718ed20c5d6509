#!/usr/bin/env bash
# The distributed trainer (dngen --mpi, issue 25) against the single-process
# one on this machine: milliseconds per training step of the seed net
# (specs/mlp.yaml) and specs/cnn.yaml on Fashion-MNIST, for
#   plain 1x1, plain 1x2     the single-process trainer, 1 and 2 threads
#   mpi 1x1, mpi 1x2         the MPI trainer, one process (1 and 2 threads)
#   mpi 2x1                  two processes of one thread (this 2-core machine)
#   mpi 2x1 allreduce        the same with MPI_Allreduce instead of the tree
#                            (DNGEN_MPI_BENCH_ALLREDUCE=1: not reproducible,
#                            only to measure what the fixed order costs)
# and the bytes each process hands to MPI per step (the algorithm's, counted
# by the runtime: DNGEN_MPI_STATS=1). A step's time is the difference of two
# runs of S1 and S2 steps divided by S2 - S1 (data loading and the final
# evaluation cancel out); medians of --reps runs, configurations interleaved.
# Also checks that every configuration ends with the same checkpoint bytes.
#
#   bench/mpi_train.sh [--reps K] [--nets "mlp cnn"]
#
# Needs Open MPI (tools/deps.sh --mpi), the data (tools/deps.sh --data) and a
# quiet machine. Writes bench/results_mpi_train.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=3
nets="mlp cnn"
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps=$2; shift 2 ;;
    --nets) nets=$2; shift 2 ;;
    *) echo "usage: bench/mpi_train.sh [--reps K] [--nets \"mlp cnn\"]" >&2; exit 2 ;;
  esac
done
data=/usr/share/datasets/fashion-mnist
[ -d "$data" ] || { echo "mpi_train.sh: no $data: tools/deps.sh --data" >&2; exit 2; }
command -v mpicc >/dev/null || { echo "mpi_train.sh: needs mpicc: tools/deps.sh --mpi" >&2; exit 2; }
cmake -S . -B build >/dev/null && cmake --build build -j"$(nproc)" >/dev/null
[ -f build/runtime/libdnrt_mpi.a ] || { echo "mpi_train.sh: libdnrt_mpi.a was not built" >&2; exit 2; }
out=build-bench/mpi_train
mkdir -p "$out"
for net in $nets; do
  build/dngen "specs/$net.yaml" -o "$out/$net.c"
  build/dngen "specs/$net.yaml" --mpi -o "$out/${net}_mpi.c"
  cc -std=c11 -O2 -fopenmp -Iruntime "$out/$net.c" -o "$out/$net" build/runtime/libdnrt.a -lz -lm
  mpicc -std=c11 -O2 -fopenmp -Iruntime "$out/${net}_mpi.c" -o "$out/${net}_mpi" build/runtime/libdnrt_mpi.a -lz -lm
done
mpirun_() { mpirun --allow-run-as-root --oversubscribe --bind-to none "$@"; }
# run NET CONFIG STEPS: seconds of wall time; the checkpoint in $out/NET-CONFIG.st
run() {
  local net=$1 cfg=$2 steps=$3 t0 t1 args
  args=(train --data "$data" --epochs 1 --max-steps "$steps" --quiet --save "$out/$net-$cfg-$steps.st")
  t0=$(date +%s.%N)
  case $cfg in
    plain1x1) "$out/$net" "${args[@]}" --threads 1 ;;
    plain1x2) "$out/$net" "${args[@]}" --threads 2 ;;
    mpi1x1) mpirun_ -np 1 "$out/${net}_mpi" "${args[@]}" --threads 1 ;;
    mpi1x2) mpirun_ -np 1 "$out/${net}_mpi" "${args[@]}" --threads 2 ;;
    mpi2x1) DNGEN_MPI_STATS=1 mpirun_ -np 2 "$out/${net}_mpi" "${args[@]}" --threads 1 2>>"$out/$net-stats.log" ;;
    allreduce2x1) DNGEN_MPI_BENCH_ALLREDUCE=1 mpirun_ -x DNGEN_MPI_BENCH_ALLREDUCE -np 2 "$out/${net}_mpi" "${args[@]}" \
                    --threads 1 ;;
  esac >/dev/null
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
configs="plain1x1 plain1x2 mpi1x1 mpi1x2 mpi2x1 allreduce2x1"
csv=bench/results_mpi_train.csv
host="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores"
echo "# bench/mpi_train.sh $(date -u +%Y-%m-%dT%H:%MZ) on $host, reps $reps" > "$csv"
echo "net,config,ms_per_step,bytes_sent_per_step_per_process" >> "$csv"
for net in $nets; do
  case $net in mlp) s1=100; s2=900 ;; *) s1=20; s2=120 ;; esac
  : > "$out/$net-stats.log"
  declare -A times=()
  for r in $(seq 1 "$reps"); do
    for cfg in $configs; do
      a=$(run "$net" "$cfg" "$s1"); b=$(run "$net" "$cfg" "$s2")
      times[$cfg]+="$(echo "($b - $a) * 1000 / ($s2 - $s1)" | bc -l) "
    done
  done
  ref="$out/$net-plain1x1-$s2.st"
  for cfg in $configs; do
    if cmp -s "$ref" "$out/$net-$cfg-$s2.st"; then same="same bytes"; else same="OTHER BYTES"; fi
    [ "$cfg" = allreduce2x1 ] || [ "$same" = "same bytes" ] ||
      { echo "mpi_train.sh: $net $cfg ends with other bytes" >&2; exit 1; }
    echo "$net $cfg: checkpoint after $s2 steps: $same as plain1x1"
  done
  bytes=$(awk '/process 0 of 2/ {print $(NF-4)}' "$out/$net-stats.log" | tail -1)
  for cfg in $configs; do
    ms=$(printf '%s\n' ${times[$cfg]} | median)
    case $cfg in mpi2x1) sent=$bytes ;; allreduce2x1) sent=n/a ;; *) sent=0 ;; esac
    printf '%-4s %-9s %8.2f ms/step  %s bytes sent per step per process\n' "$net" "$cfg" "$ms" "$sent"
    printf '%s,%s,%.3f,%s\n' "$net" "$cfg" "$ms" "$sent" >> "$csv"
  done
  unset times
done
echo "checkpoints: every reproducible configuration ended with the same bytes; results in $csv"

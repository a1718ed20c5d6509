#!/usr/bin/env bash
# The gradient reduction of issue 25 on this machine: MPI_Allreduce against
# deterministic sums over fixed chunks of rows (bench/mpi_reduce.c says how
# each works), for 1 to 4 processes, on the seed net's gradient (235,146
# floats) and specs/cnn.yaml's (1,199,882), batch 64 in chunks of 16 rows;
# then the single-process cost of the chunk order in a weight-gradient kernel.
#
#   bench/mpi_reduce.sh [--reps K] [--max-np N]
#
# Needs Open MPI (tools/deps.sh --mpi). Checks that the deterministic designs
# give the same checksum at every process count (exit 1 otherwise) and
# prints whether MPI_Allreduce's does. Writes bench/results_mpi.csv.
# More processes than cores run oversubscribed (--oversubscribe): on a
# 2-core machine the times at 3 and 4 processes measure time-sharing, not
# communication. Built with -O3: at -O2, GCC 12 leaves the vector additions
# of the ordered sum scalar in some of their callers (3-5x slower).
set -euo pipefail
cd "$(dirname "$0")/.."
reps=20
max_np=4
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps=$2; shift 2 ;;
    --max-np) max_np=$2; shift 2 ;;
    *) echo "usage: bench/mpi_reduce.sh [--reps K] [--max-np N]" >&2; exit 2 ;;
  esac
done
command -v mpicc >/dev/null && command -v mpirun >/dev/null ||
  { echo "mpi_reduce.sh: needs mpicc and mpirun: tools/deps.sh --mpi" >&2; exit 2; }
out=build-bench
mkdir -p "$out"
mpicc -std=c11 -O3 -march=native -Wall -Wextra bench/mpi_reduce.c -o "$out/mpi_reduce"
run() { # np args...
  local np=$1; shift
  timeout 120 mpirun --allow-run-as-root --oversubscribe -np "$np" "$out/mpi_reduce" "$@"
}

csv=bench/results_mpi.csv
log=$(mktemp "${TMPDIR:-/tmp}/mpi_reduce.XXXXXX")
trap 'rm -f "$log"' EXIT
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for floats in 235146 1199882; do
  for np in $(seq 1 "$max_np"); do
    run "$np" --floats "$floats" --reps "$reps" | tee -a "$log"
  done
done
# Chunks of 8 rows (8 chunks): how MPI_Allreduce's bits move with N.
for np in $(seq 1 "$max_np"); do
  run "$np" --chunk 8 --reps 3 | sed 's/^np=/chunk8 np=/' | tee -a "$log"
done
run 1 --kernel --batch 64 --reps 200 | tee -a "$log"
run 1 --kernel --batch 256 --reps 50 | tee -a "$log"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

{
  echo "np,design,floats,median_ms,min_ms,bytes_sent_max_rank,checksum"
  grep '^np=' "$log" | sed 's/(ring-model)//' |
    awk '{for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
          print f["np"] "," f["design"] "," f["floats"] "," f["median_ms"] "," f["min_ms"] "," f["bytes_sent_max_rank"] "," f["checksum"]}'
} > "$csv"

status=0
for floats in 235146 1199882; do
  for design in gather chain scatter tree allreduce; do
    n=$(awk -F, -v d="$design" -v p="$floats" '$2 == d && $3 == p {print $7}' "$csv" | sort -u | wc -l)
    if [ "$design" = allreduce ]; then
      echo "$floats floats, $design: $n distinct checksum(s) over np=1..$max_np (not guaranteed to be 1)"
    elif [ "$n" -eq 1 ]; then
      echo "$floats floats, $design: same bytes at np=1..$max_np"
    else
      echo "$floats floats, $design: FAILED: $n distinct checksums over np=1..$max_np" >&2
      status=1
    fi
  done
  # the linear chunk order's designs must agree with each other
  d=$(awk -F, -v p="$floats" '$3 == p && ($2 == "gather" || $2 == "chain" || $2 == "scatter") {print $7}' "$csv" | sort -u | wc -l)
  [ "$d" -eq 1 ] || { echo "$floats floats: gather, chain and scatter differ" >&2; status=1; }
done
for design in allreduce gather chain scatter tree; do
  n=$(grep "^chunk8 .* design=$design " "$log" | sed 's/.*checksum=//' | sort -u | wc -l)
  echo "235146 floats in 8 chunks of 8 rows, $design: $n distinct checksum(s) over np=1..$max_np"
  [ "$design" = allreduce ] || [ "$n" -eq 1 ] || status=1
done
echo "wrote $csv"
exit $status

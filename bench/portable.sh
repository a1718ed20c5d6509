#!/usr/bin/env bash
# The portable build against -march=native, in one run on this machine:
#
#   bench/portable.sh [--reps N]
#
# Builds the seed trainer (specs/mlp.yaml) and its static predictor twice:
# as README says (no -march: the program picks its AVX-512, AVX2 or baseline
# kernels at run time) and for this CPU only (-march=native -DDN_NO_DISPATCH).
# Times, taking turns so that load which comes and goes hits both alike:
# a training epoch on Fashion-MNIST with 1 and 2 threads (the trainer's
# per-epoch time), and the predictor on the 10k test images (its CPU time,
# with and without --mc 5); also the portable binary capped to its AVX2 and
# baseline copies (DN_CPU). Prints medians and portable/native ratios and
# writes bench/portable.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=5
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps=$2; shift 2 ;;
    *) echo "usage: bench/portable.sh [--reps N]" >&2; exit 2 ;;
  esac
done
data=/usr/share/datasets/fashion-mnist
out=build-bench
csv=bench/portable.csv

tools/deps.sh --data
cmake -S . -B "$out" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$out" -j"$(nproc)" --target dngen dnrt >/dev/null
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(gcc --version | head -1)"

"$out/dngen" specs/mlp.yaml --standalone -o "$out/pt_mlp.c"
cc -O2 -fopenmp "$out/pt_mlp.c" -o "$out/pt_mlp_portable" -lz -lm
cc -O2 -march=native -DDN_NO_DISPATCH -fopenmp "$out/pt_mlp.c" -o "$out/pt_mlp_native" -lz -lm
# weights for the predictor: one epoch of the portable trainer
"$out/pt_mlp_portable" train --data "$data" --epochs 1 --save "$out/pt_w.safetensors" >/dev/null
"$out/dngen" specs/mlp.yaml --inference --weights "$out/pt_w.safetensors" -o "$out/pt_predict.c"
cc -O2 -static "$out/pt_predict.c" -o "$out/pt_predict_portable" -lz -lm
cc -O2 -march=native -DDN_NO_DISPATCH -static "$out/pt_predict.c" -o "$out/pt_predict_native" -lz -lm

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
epoch_time() { # binary threads [env...]
  local bin=$1 th=$2; shift 2
  env "$@" "$bin" train --data "$data" --epochs 1 --threads "$th" |
    awk '/^epoch/ {for (i = 1; i <= NF; i++) if ($i == "time") {sub("s", "", $(i + 1)); print $(i + 1)}}'
}
cpu_time() { # command...: its user + system CPU seconds (one thread, so
  # other load on the machine does not count, as it would in wall time)
  /usr/bin/time -f "%U %S" "$@" 2>&1 >/dev/null | tail -1 | awk '{printf "%.2f\n", $1 + $2}'
}
declare -A t
images="$data/t10k-images-idx3-ubyte.gz"
for _ in $(seq "$reps"); do
  for build in portable native; do
    for th in 1 2; do t[train.$th.$build]+="$(epoch_time "$out/pt_mlp_$build" "$th") "; done
    t[predict.1.$build]+="$(cpu_time "$out/pt_predict_$build" "$images" --format csv) "
    t[predict_mc5.1.$build]+="$(cpu_time "$out/pt_predict_$build" "$images" --mc 5 --format csv) "
  done
  for cap in avx2 baseline; do
    t[train.1.portable_$cap]+="$(epoch_time "$out/pt_mlp_portable" 1 DN_CPU=$cap) "
  done
done

echo "what,threads,build,median_s" > "$csv"
printf '%-12s %7s %-18s %9s %8s\n' what threads build median_s ratio
for key in $(printf "%s\n" "${!t[@]}" | sort); do
  IFS=. read -r what th build <<<"$key"
  m=$(echo "${t[$key]}" | tr ' ' '\n' | grep . | median)
  echo "$what,$th,$build,$m" >> "$csv"
  native=$(echo "${t[$what.$th.native]:-}" | tr ' ' '\n' | grep . | median || true)
  ratio=NA
  [ -n "$native" ] && ratio=$(echo "$m / $native" | bc -l | xargs printf '%.3f')
  printf '%-12s %7s %-18s %9s %8s\n' "$what" "$th" "$build" "$m" "$ratio"
done
echo "ratio: median time / the -march=native build's median (1.000 = as fast)"

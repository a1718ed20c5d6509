#!/usr/bin/env bash
# Builds every libFuzzer harness in tests/fuzz/ and runs each for FUZZ_SECONDS
# (default 60) on a scratch copy of its seed corpus, so new units never land
# in the repository. Prints one summary line per harness and exits non-zero
# if any harness crashed (the scratch directory with the crash input and the
# log is then kept and named).
#
#   tests/fuzz/run.sh                       # all harnesses, 60 s each
#   FUZZ_SECONDS=600 tests/fuzz/run.sh spec # one harness, longer
#
# Environment: FUZZ_SECONDS, FUZZ_BUILD_DIR (default build-fuzz), CC (clang).
# Needs clang with its fuzzer runtime (Debian: clang, libclang-rt-14-dev) and
# the libyaml and zlib development files.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
cc=${CC:-clang}
all=(spec idx safetensors csv table npy)
if [ $# -gt 0 ]; then harnesses=("$@"); else harnesses=("${all[@]}"); fi

# shellcheck disable=SC2054 # the commas belong to -fsanitize=
cflags=(-std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
        -D_POSIX_C_SOURCE=200809L -I"$root/generator/front" -I"$root/generator/cmd" -I"$root/runtime")

# Sources and libraries of each harness (besides tests/fuzz/fuzz_<name>.c).
deps() {
  case "$1" in
    spec) echo generator/front/*.c # the whole front end (yaml_tree, yaml_get, diag, validate*)
          echo "runtime/dn_file.c runtime/dn_io.c"
          pkg-config --cflags --libs yaml-0.1 ;;
    idx) echo "runtime/dn_idx.c runtime/dn_io.c runtime/dn_dataset.c runtime/dn_data_csv.c runtime/dn_npy.c"
         echo "runtime/dn_table.c runtime/dn_csv.c runtime/dn_file.c -lz -lm" ;; # datasets share dn_dataset.c
    safetensors) echo "runtime/dn_safetensors.c runtime/dn_io.c" ;;
    csv) echo "generator/cmd/plot_csv.c runtime/dn_csv.c" ;;
    table) echo "runtime/dn_data_csv.c runtime/dn_table.c runtime/dn_csv.c runtime/dn_file.c runtime/dn_io.c -lz -lm" ;;
    npy) echo "runtime/dn_npy.c runtime/dn_table.c runtime/dn_file.c runtime/dn_io.c -lm" ;;
    *) echo "run.sh: unknown harness '$1' (known: ${all[*]})" >&2; return 1 ;;
  esac
}

mkdir -p "$build"
for h in "${harnesses[@]}"; do
  d=$(deps "$h" | tr '\n' ' ')
  # shellcheck disable=SC2086 # $d is a word list by design
  (cd "$root" && "$cc" "${cflags[@]}" "tests/fuzz/fuzz_$h.c" $d -o "$build/fuzz_$h")
done

scratch=$(mktemp -d "${TMPDIR:-/tmp}/dngen-fuzz.XXXXXX")
failed=0
for h in "${harnesses[@]}"; do
  work=$scratch/$h
  mkdir -p "$work/tmp"
  cp -R "$root/tests/fuzz/corpus/$h" "$work/corpus"
  opts=(-max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$work/")
  [ -f "$root/tests/fuzz/$h.dict" ] && opts+=(-dict="$root/tests/fuzz/$h.dict")
  start=$SECONDS
  rc=0
  TMPDIR=$work/tmp "$build/fuzz_$h" "${opts[@]}" "$work/corpus" >"$work/log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
  units=$(find "$work/corpus" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    result="ok"
  else
    failed=1
    artifact=$(sed -n 's/.*Test unit written to //p' "$work/log" | tail -n 1)
    result="FAILED (exit $rc; input: ${artifact:-none}; log: $work/log)"
  fi
  printf 'fuzz %-12s %10s execs  %4ss  %5s corpus units  %s\n' \
    "$h" "${execs:-?}" "$((SECONDS - start))" "$units" "$result"
done

if [ "$failed" -ne 0 ]; then
  echo "fuzz: crashes found; scratch directory kept: $scratch" >&2
  exit 1
fi
rm -rf "$scratch"

#!/usr/bin/env bash
# End-to-end check of the CMake package (docs/cmake.md), in a temp dir:
#  1. build dngen, install it into a prefix, build examples/consumer against it
#     with find_package(dngen), run the trainer;
#  2. a second build does nothing; touching the spec, or the installed dngen,
#     regenerates the trainer source;
#  3. dngen_add_trainer() inside a project that add_subdirectory()s dngen.
# Usage: tools/consumer-test.sh        (KEEP=1 keeps the temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dngen-consumer.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
  echo "consumer-test: keeping $tmp"
else
  trap 'rm -rf "$tmp"' EXIT
fi
jobs=-j"$(nproc)"

fail() { echo "consumer-test: FAIL: $*" >&2; exit 1; }
# run LOG CMD...: run quietly into $tmp/LOG, show the log if it fails.
run() {
  local log=$tmp/$1; shift
  "$@" >"$log" 2>&1 || { cat "$log" >&2; fail "$*"; }
}
mtime() { stat -c %y "$1"; }

# 1. Install into a prefix, then an outside project finds it.
run dngen.log cmake -S "$src" -B "$tmp/dngen" -DBUILD_TESTING=OFF -DDNGEN_WERROR=ON
targets="dngen dnrt"
# the MPI runtime too when CMake found MPI (it is installed with the rest)
cmake --build "$tmp/dngen" --target help | grep -q dnrt_mpi && targets="$targets dnrt_mpi"
run dngen-build.log cmake --build "$tmp/dngen" "$jobs" --target $targets
run install.log cmake --install "$tmp/dngen" --prefix "$tmp/prefix"
for f in bin/dngen include/dngen/dn_runtime.h include/dngen/dn_train.h; do
  [ -e "$tmp/prefix/$f" ] || fail "not installed: $f"
done
ls "$tmp"/prefix/lib*/libdnrt.a "$tmp"/prefix/lib*/cmake/dngen/dngenConfig.cmake >/dev/null \
  || fail "libdnrt.a or dngenConfig.cmake not installed"

cp -r examples/consumer "$tmp/consumer-src"
spec=$tmp/consumer-src/keras_example.yaml
b=$tmp/consumer
gen=$b/keras_trainer.c
run consumer.log cmake -S "$tmp/consumer-src" -B "$b" -DCMAKE_PREFIX_PATH="$tmp/prefix"
if grep -qi 'warning' "$tmp/consumer.log"; then cat "$tmp/consumer.log" >&2; fail "consumer configure warned"; fi
run build1.log cmake --build "$b"
grep -q 'Generating keras_trainer.c' "$tmp/build1.log" || fail "first build did not generate keras_trainer.c"
run help.log "$b/keras_trainer" --help
grep -q 'keras_example' "$tmp/help.log" || fail "keras_trainer --help does not name its model"
echo "consumer-test: find_package(dngen) + dngen_add_trainer: built, --help exits 0"

# 2. Regeneration happens exactly when an input changes.
c0=$(mtime "$gen"); x0=$(mtime "$b/keras_trainer")
run build2.log cmake --build "$b"
if grep -q 'Generating\|Building\|Linking' "$tmp/build2.log"; then
  cat "$tmp/build2.log" >&2; fail "a second build did work"
fi
[ "$(mtime "$gen")" = "$c0" ] && [ "$(mtime "$b/keras_trainer")" = "$x0" ] \
  || fail "a second build touched keras_trainer.c or keras_trainer"
echo "consumer-test: second build: no work"

touch "$spec"
run build3.log cmake --build "$b"
grep -q 'Generating keras_trainer.c' "$tmp/build3.log" || fail "touching the spec did not regenerate"
[ "$(mtime "$gen")" != "$c0" ] || fail "touching the spec left keras_trainer.c unchanged"
c1=$(mtime "$gen")
touch "$tmp/prefix/bin/dngen"
run build4.log cmake --build "$b"
grep -q 'Generating keras_trainer.c' "$tmp/build4.log" || fail "a newer dngen did not regenerate"
[ "$(mtime "$gen")" != "$c1" ] || fail "a newer dngen left keras_trainer.c unchanged"
run help2.log "$b/keras_trainer" --help
echo "consumer-test: touching the spec or dngen regenerates"

# 3. The same functions inside dngen's own build (ALIAS targets).
mkdir "$tmp/intree-src"
cp "$spec" "$tmp/intree-src/"
cat >"$tmp/intree-src/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.16)
project(intree LANGUAGES C)
set(BUILD_TESTING OFF CACHE BOOL "")
add_subdirectory("$src" dngen)
dngen_add_trainer(linked SPEC keras_example.yaml)
dngen_add_trainer(standalone SPEC keras_example.yaml OUTPUT gen/standalone.c STANDALONE)
EOF
run intree.log cmake -S "$tmp/intree-src" -B "$tmp/intree"
run intree-build.log cmake --build "$tmp/intree" "$jobs" --target linked standalone
run intree-help.log "$tmp/intree/linked" --help
run intree-help2.log "$tmp/intree/standalone" --help
echo "consumer-test: add_subdirectory(dngen) + dngen_add_trainer (linked, STANDALONE): built, --help exits 0"
echo "consumer-test: OK"

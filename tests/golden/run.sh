#!/usr/bin/env bash
# Golden test of the emitted C: the generated source of every spec in specs/
# and tests/fixtures/, and of three predictors (weights committed here, made by
# make_weights.py from the PyTorch fixtures' initial weights), compared byte
# for byte with the snapshots beside this script, so that every change to
# generated code is reviewed as a diff of C.
#
#   tests/golden/run.sh DNGEN            compare (exit 1 and a diff on change)
#   tests/golden/run.sh DNGEN --update   rewrite the snapshots after an
#                                        intended change; commit the diff
#
# DNGEN is the dngen executable (e.g. build/dngen). dngen runs from the
# source root with relative spec paths, as a user would, so the snapshots do
# not depend on where the tree lives. A predictor's pasted copy of runtime/
# is cut out: it is not generated, and runtime changes are reviewed as such.
set -euo pipefail
dngen=$(realpath "$1")
mode=${2:-check}
root=$(cd "$(dirname "$0")/../.." && pwd)
golden=$root/tests/golden
cd "$root"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# name -> dngen arguments (all relative to the source root)
cases=()
for spec in specs/*.yaml tests/fixtures/*.yaml; do
  cases+=("$(basename "$spec" .yaml).c|$spec")
done
cases+=("small_ce_predict.c|tests/fixtures/small_ce.yaml --inference --weights tests/golden/small_ce_weights.safetensors")
cases+=("small_bn_predict.c|tests/fixtures/small_bn.yaml --inference --weights tests/golden/small_bn_weights.safetensors")
cases+=("small_conv4_predict.c|tests/fixtures/small_conv4.yaml --inference --weights tests/golden/small_conv4_weights.safetensors")

status=0
for c in "${cases[@]}"; do
  name=${c%%|*}
  # shellcheck disable=SC2086  # the arguments are words on purpose
  "$dngen" ${c#*|} -o "$tmp/$name.full"
  sed '/^\/\* ==== dngen runtime .* ==== \*\/$/,/^\/\* ==== end of dngen runtime ==== \*\/$/c\
/* (dngen runtime cut by tests/golden/run.sh) */' "$tmp/$name.full" >"$tmp/$name"
  if [ "$mode" = --update ]; then
    cp "$tmp/$name" "$golden/$name"
  elif ! cmp -s "$tmp/$name" "$golden/$name"; then
    echo "golden: $name differs from tests/golden/$name:" >&2
    diff -u "$golden/$name" "$tmp/$name" | head -60 >&2 || true
    status=1
  fi
done
if [ "$mode" = --update ]; then
  echo "golden: ${#cases[@]} snapshots written to tests/golden/; review them with git diff"
elif [ $status -ne 0 ]; then
  echo "golden: generated code changed; if intended, run tests/golden/run.sh $1 --update and commit the diff" >&2
fi
exit $status

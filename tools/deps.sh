#!/usr/bin/env bash
# Installs the Debian packages dngen needs that are missing (as root, or through
# sudo). Usage: tools/deps.sh [--data]   (--data adds the Fashion-MNIST dataset)
set -euo pipefail

pkgs=(gcc clang make cmake pkg-config libyaml-dev check zlib1g-dev libomp-dev
      libclang-rt-14-dev   # libFuzzer and sanitizer runtimes for tests/fuzz/run.sh
      valgrind)            # check_e2e runs a small training under valgrind
if [ "${1:-}" = "--data" ]; then
  pkgs+=(dataset-fashion-mnist)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "dngen: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"

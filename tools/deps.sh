#!/usr/bin/env bash
# Installs the Debian packages dngen needs that are missing (as root, or through
# sudo). Usage: tools/deps.sh [--data] [--arm64] [--mpi]
#   --data    adds the Fashion-MNIST dataset
#   --mpi     adds Open MPI (mpicc, mpirun) for bench/mpi_reduce.sh, the
#             data-parallel trainer of docs/distributed.md and tests/check_mpi.c
#   --arm64   adds the ARM64 cross compiler, qemu-user and arm64 zlib (the
#             dpkg architecture arm64 is added first) for tests/check_arm64.c
#
# When another apt or dpkg is running (unattended-upgrades, a second shell),
# this waits for it instead of stopping at apt's lock error: up to
# DNGEN_APT_WAIT seconds (default 600) in all, saying which lock it waits
# for and which process holds it.
set -euo pipefail

pkgs=(gcc clang make cmake pkg-config libyaml-dev check zlib1g-dev libomp-dev
      libclang-rt-14-dev   # libFuzzer and sanitizer runtimes for tests/fuzz/run.sh
      valgrind)            # check_e2e runs a small training under valgrind
arm64=0
for arg in "$@"; do
  case $arg in
    --data) pkgs+=(dataset-fashion-mnist) ;;
    --arm64) arm64=1; pkgs+=(gcc-aarch64-linux-gnu qemu-user zlib1g-dev:arm64) ;;
    --mpi) pkgs+=(libopenmpi-dev openmpi-bin) ;;
    *) echo "usage: tools/deps.sh [--data] [--arm64] [--mpi]" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
wait_max=${DNGEN_APT_WAIT:-600}
case $wait_max in ''|*[!0-9]*) echo "dngen: DNGEN_APT_WAIT must be a number of seconds, got '$wait_max'" >&2; exit 2;; esac
deadline=$((SECONDS + wait_max))
errlog=$(mktemp "${TMPDIR:-/tmp}/dngen-apt.XXXXXX")
trap 'rm -f "$errlog"' EXIT

# apt_get ARGS...: apt-get ARGS, waiting for other apt/dpkg processes until
# the deadline. apt waits for the dpkg locks itself with DPkg::Lock::Timeout
# (and prints "Waiting for cache lock ..."), but not for the package lists'
# lock of apt-get update nor for the download cache's: on those it fails at
# once with "Could not get lock", so it is run again every 2 seconds.
apt_get() {
  local said="" lock
  while :; do
    local left=$((deadline - SECONDS))
    [ $left -gt 0 ] || left=0
    if $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$left" "$@" 2>"$errlog"; then
      cat "$errlog" >&2
      return 0
    fi
    if ! grep -q '^E: Could not get lock\|^E: Unable to acquire the dpkg frontend lock' "$errlog"; then
      cat "$errlog" >&2
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      cat "$errlog" >&2
      echo "dngen: gave up after waiting ${wait_max} s for another apt or dpkg to finish (DNGEN_APT_WAIT sets the wait)" >&2
      return 1
    fi
    lock=$(sed -n 's/^E: Could not get lock \(.*\)$/\1/p' "$errlog" | head -n 1)
    [ -n "$lock" ] || lock="the dpkg frontend lock"
    if [ "$lock" != "$said" ]; then
      echo "dngen: apt-get $1 waits for another apt or dpkg to finish: could not get lock $lock; retrying for up to $((deadline - SECONDS)) s" >&2
      said=$lock
    fi
    sleep 2
  done
}

echo "dngen: installing ${missing[*]}" >&2
if [ $arm64 = 1 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "dngen: adding the dpkg architecture arm64 (for zlib1g-dev:arm64)" >&2
  $sudo dpkg --add-architecture arm64
fi
apt_get update -q
apt_get install -y -q --no-install-recommends "${missing[@]}"

#!/usr/bin/env bash
# Sets up and runs every test: installs missing packages, then
#   0. installs what is missing (tools/deps.sh --arm64 --mpi);
#   1. builds with -Werror and runs the Check suites through CTest (build/;
#      tests are built only with -DBUILD_TESTING=ON, off in a plain build);
#   2. installs the CMake package and builds a consumer (tools/consumer-test.sh);
#   3. the Check suites again with AddressSanitizer + UBSan, generated
#      trainers included (build-asan/);
#   4. every libFuzzer harness for FUZZ_SECONDS (default 60) each
#      (tests/fuzz/run.sh; harness binaries in build-fuzz/).
# Stops at the first stage that fails.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

stage() { printf '\n==== test.sh: %s\n' "$*"; }

stage "dependencies (tools/deps.sh)"
tools/deps.sh --arm64 --mpi   # the ARM64 cross toolchain and qemu-user (check_arm64), Open MPI (check_mpi)

stage "build + ctest (build/, -Werror)"
cmake -S . -B build -DDNGEN_WERROR=ON -DBUILD_TESTING=ON
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

stage "CMake package: install, find_package(dngen) consumer, regeneration (tools/consumer-test.sh)"
tools/consumer-test.sh

stage "sanitizer build + ctest (build-asan/, -fsanitize=address,undefined)"
cmake -S . -B build-asan -DDNGEN_WERROR=ON -DDNGEN_SANITIZE=ON -DBUILD_TESTING=ON
cmake --build build-asan -j"$jobs"
ctest --test-dir build-asan --output-on-failure -j"$jobs"

stage "fuzzing (tests/fuzz/run.sh, ${FUZZ_SECONDS:-60} s per harness)"
FUZZ_SECONDS=${FUZZ_SECONDS:-60} tests/fuzz/run.sh

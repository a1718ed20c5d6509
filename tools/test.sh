#!/usr/bin/env bash
# Sets up and runs every test: installs missing packages, builds with -Werror,
# runs the Check suites through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
cmake -S . -B build -DDNGEN_WERROR=ON
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)"

printf '\n==== test.sh: %s\n' "CMake package: install, find_package(dngen) consumer, regeneration (tools/consumer-test.sh)"
tools/consumer-test.sh

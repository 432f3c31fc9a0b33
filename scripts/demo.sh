#!/usr/bin/env bash
# Installs dependencies, builds meshrpc and runs the demo (examples/demo/demo.cc).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target meshrpc_demo
build/examples/meshrpc_demo

#!/usr/bin/env bash
# Installs everything meshrpc needs to build and test, from Debian 12 packages only.
# Idempotent: packages already present are skipped by apt. Run as root (CI is root).
#   scripts/setup.sh          build + test dependencies
#   scripts/setup.sh --bench  also gRPC C++ (the benchmark peer; never linked into meshrpc)
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  clang clang-format clang-tidy libclang-rt-14-dev llvm
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libprotobuf-dev protobuf-compiler libprotoc-dev
  libssl-dev libspdlog-dev libfmt-dev libcli11-dev libzstd-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  # tests only: a real etcd for the etcd resolver's tests (never a build dependency)
  etcd-server
  # tests only: curl for the HTTP gateway tests, promtool (prometheus) to validate /metrics
  curl prometheus chromium
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(libgrpc++-dev protobuf-compiler-grpc python3)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: installed ${missing[*]}"

#!/usr/bin/env bash
# Installs what the checks need on a fresh machine: a C compiler pair for the header checks,
# libgc for the peer benchmarks, and nightly Rust with rust-src for ThreadSanitizer.
set -euo pipefail

need_apt=()
command -v clang >/dev/null || need_apt+=(clang)
command -v cc >/dev/null || need_apt+=(gcc)
[ -f /usr/include/gc.h ] || need_apt+=(libgc-dev)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

rustup component list --installed | grep -q '^clippy' || rustup component add clippy
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
rustup component list --toolchain nightly --installed | grep -q '^rust-src' \
  || rustup component add rust-src --toolchain nightly
echo "setup done"

#!/usr/bin/env bash
# Loom models over the real protocol code (safepoints and handshakes, SATB hand-off, object
# barrier, lazy sweep, worker termination and panics); each prints its interleavings and time
# with `-- --nocapture`.
# CI bounds preemptions; for an exhaustive run by hand: LOOM_MAX_PREEMPTIONS= bash .ci/loom.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS-2}"
[ -n "$LOOM_MAX_PREEMPTIONS" ] || unset LOOM_MAX_PREEMPTIONS
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p loom-tests --release

#!/usr/bin/env bash
# ThreadSanitizer: the collector's integration tests and the stress `graph` and
# `binary-trees` workloads with verification on (binary-trees also under the torture
# setting, graph also in generational mode), and C clients through the inline barriers and
# the VM services.
# Any report fails the run (halt_on_error; TSan exits 66).
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
export RUSTFLAGS="-Zsanitizer=thread" RUSTDOCFLAGS="-Zsanitizer=thread"
export TSAN_OPTIONS="suppressions=$PWD/.ci/tsan.supp halt_on_error=1 second_deadlock_stack=1"
export CARGO_TARGET_DIR=target/tsan
tsan_cargo() { cargo +nightly "$@" -Zbuild-std --target "$target"; }

tsan_cargo test --release -p tandem --lib --test collector --test faults --test logger_faults --test verify_corruption --test evacuation --test services --test generational
tsan_cargo build --release -p tandem-stress
stress="target/tsan/$target/release/tandem-stress"
TANDEM_VERIFY=1 "$stress" graph --threads 4 --seconds "${TSAN_SECONDS:-10}" --heap-max 64M
TANDEM_VERIFY=1 "$stress" binary-trees --threads 2 --seconds "${TSAN_SECONDS:-10}" --heap-max 64M
# The torture setting: objects move out of every block with a free line, so the load
# barrier, the copy races and the workloads' rooting all run under the sanitizer.
TANDEM_EVACUATE_ALL=1 TANDEM_VERIFY=1 "$stress" binary-trees --threads 2 --seconds "${TSAN_SECONDS:-10}" --heap-max 64M
# The young generation: the REMEMBER barrier against the markers' arming, nursery cycles'
# remembered-set scans and sticky sweeps, with objects moving too.
TANDEM_GENERATIONAL=1 TANDEM_EVACUATE_ALL=1 TANDEM_VERIFY=1 "$stress" graph --threads 4 --seconds "${TSAN_SECONDS:-10}" --heap-max 64M
# Reference arrays up to 1 MB: marked in slices that the workers steal from each other.
TANDEM_VERIFY=1 "$stress" large --threads 2 --seconds "${TSAN_SECONDS:-10}" --max-size 1M --heap-max 128M
# The C side, as a VM would run it: a C client built with TSan instrumentation (clang) and
# linked with the instrumented library and Rust's TSan runtime (the system's runtime is
# older than nightly's LLVM and lacks symbols it needs). Four threads share a graph through
# the header's inline barriers while the collector moves its objects.
tsan_cargo build --release -p tandem-ffi
lib="target/tsan/$target/release/libtandem.a"
rt="$(rustc +nightly --print sysroot)/lib/rustlib/$target/lib/librustc-nightly_rt.tsan.a"
client="target/tsan/evacuation-tsan"
clang -O1 -g -std=c11 -fsanitize=thread -c -o "$client.o" ffi/tests/c/evacuation.c -Iffi/include
clang -o "$client" "$client.o" "$lib" -Wl,--whole-archive "$rt" -Wl,--no-whole-archive \
  -lpthread -ldl -lm -lrt
"$client" concurrent
"$client" concurrent all
"$client" concurrent gen
# The VM services (weakrefs, finalizers, destructors, stepping) with objects moving at every
# cycle: four threads' weak caches race the settling of weak slots after the final mark.
services="target/tsan/vm-services-tsan"
clang -O1 -g -std=c11 -fsanitize=thread -c -o "$services.o" ffi/tests/c/vm_services.c \
  -Iffi/include -Iffi/tests/c
clang -o "$services" "$services.o" "$lib" -Wl,--whole-archive "$rt" -Wl,--no-whole-archive \
  -lpthread -ldl -lm -lrt
"$services" concurrent
"$services" stw
echo "ThreadSanitizer: clean"

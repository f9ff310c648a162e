//! Fast-path costs, in ns per operation: allocation from the Rust API (`Mutator::alloc`)
//! and from C (`tandem_alloc`, inline in `tandem.h`), and the inactive barrier and
//! safepoint fast paths from C against plain stores and loads (`c_fastpath.c`).
//!
//! `cargo bench -p tandem-ffi --bench fastpath` runs it in full (well under a minute);
//! `cargo test -p tandem-ffi --benches` runs a quick smoke version of the same code.

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};
use tandem_core::{Config, Heap, Mode, TypeId, TypeInfo};

/// Objects per timed burst: a few MiB, below the collection trigger.
const BURST: usize = 100_000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median ns per object over bursts of `Mutator::alloc`, with an untimed collection
/// between bursts (TLAB refills are inside the bursts, as in `c_fastpath.c`).
fn rust_alloc(heap: &Heap, ty: TypeId, length: usize, scale: f64) -> f64 {
    let mut m = heap.attach().expect("attach");
    let bursts = 5 + (45.0 * scale) as usize;
    let per_burst = ((BURST as f64 * scale.min(1.0)) as usize).max(1000);
    let mut v = Vec::with_capacity(bursts);
    for _ in 0..bursts {
        let t0 = Instant::now();
        for _ in 0..per_burst {
            black_box(m.alloc(ty, length).expect("alloc"));
        }
        v.push(t0.elapsed().as_nanos() as f64 / per_burst as f64);
        m.collect().expect("collect");
    }
    median(v)
}

fn rust_benches(scale: f64) {
    // Stop-the-world: the collections between bursts are then short and the bursts never
    // overlap a concurrent cycle; the fast paths measured are the same in every mode.
    let heap = Heap::with_config(Config {
        threads: 1,
        mode: Mode::Stw,
        ..Config::default()
    })
    .expect("heap");
    let cons = heap
        .register_type(TypeInfo {
            fixed_size: 24,
            ref_offsets: vec![8, 16],
            ..TypeInfo::default()
        })
        .expect("cons type");
    let array = heap
        .register_type(TypeInfo {
            fixed_size: 16,
            item_size: 8,
            length_offset: 8,
            item_ref_offsets: vec![0],
            ..TypeInfo::default()
        })
        .expect("array type");
    println!("Rust, allocation (ns/object, median burst, TLAB refills included):");
    println!(
        "  Mutator::alloc, 24 B cons               {:6.2}",
        rust_alloc(&heap, cons, 0, scale)
    );
    println!(
        "  Mutator::alloc, 48 B array[4]           {:6.2}",
        rust_alloc(&heap, array, 4, scale)
    );
}

fn c_benches(scale: f64) {
    let src = support::ffi_dir().join("benches/c_fastpath.c");
    let exe = support::build_program(&src, "c_fastpath", &["-O2"]);
    let out = support::run_program(&exe, &[&scale.to_string()], Duration::from_secs(120));
    print!("{}", out.stdout);
    eprint!("{}", out.stderr);
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let scale = if full { 1.0 } else { 0.01 };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("({cores} cores available)");
    let t0 = Instant::now();
    rust_benches(scale);
    let t1 = Instant::now();
    c_benches(scale);
    println!(
        "({} run: Rust {:.1} s, C {:.1} s including its build)",
        if full { "full" } else { "smoke" },
        (t1 - t0).as_secs_f64(),
        t1.elapsed().as_secs_f64()
    );
}

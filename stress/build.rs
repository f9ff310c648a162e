//! Links the Boehm collector (libgc), the peer that `tandem-stress bench` compares against.
//!
//! Debian's `libgc-dev` (installed by `.ci/setup.sh`) provides `libgc.so`; where only the
//! runtime package `libgc1` is present, the versioned `libgc.so.1` is linked by its name.

use std::path::Path;

const LIB_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=TANDEM_LIBGC_DIR");
    let mut dirs: Vec<String> = LIB_DIRS.iter().map(|d| d.to_string()).collect();
    if let Ok(d) = std::env::var("TANDEM_LIBGC_DIR") {
        dirs.insert(0, d);
    }
    for d in &dirs {
        if Path::new(d).join("libgc.so").exists() {
            println!("cargo:rustc-link-search=native={d}");
            println!("cargo:rustc-link-lib=dylib=gc");
            return;
        }
    }
    for d in &dirs {
        if Path::new(d).join("libgc.so.1").exists() {
            println!("cargo:rustc-link-search=native={d}");
            println!("cargo:rustc-link-lib=dylib:+verbatim=libgc.so.1");
            return;
        }
    }
    panic!(
        "tandem-stress links the Boehm collector (libgc) for its peer benchmarks, and no \
         libgc.so was found in {dirs:?}: install it with `apt-get install libgc-dev` \
         (or run `bash .ci/setup.sh`), or set TANDEM_LIBGC_DIR to the folder that holds it"
    );
}

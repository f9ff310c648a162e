//! Compiling the C clients: the sources (embedded in this binary, so the bench runs from
//! any directory) are written out and compiled with the system C compiler (`$CC`, else
//! `cc`): the Tandem clients against `tandem.h` and `libtandem.a` of this binary's build
//! profile, the libgc clients against `gc.h` and `-lgc`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The shared header and each client's source, by file name.
const SOURCES: &[(&str, &str)] = &[
    ("bench.h", include_str!("../../../c/bench.h")),
    ("bench_tandem.h", include_str!("../../../c/bench_tandem.h")),
    (
        "binary_trees_tandem.c",
        include_str!("../../../c/binary_trees_tandem.c"),
    ),
    (
        "binary_trees_gc.c",
        include_str!("../../../c/binary_trees_gc.c"),
    ),
    (
        "gcbench_tandem.c",
        include_str!("../../../c/gcbench_tandem.c"),
    ),
    ("gcbench_gc.c", include_str!("../../../c/gcbench_gc.c")),
    ("weak_cache.h", include_str!("../../../c/weak_cache.h")),
    (
        "weak_cache_tandem.c",
        include_str!("../../../c/weak_cache_tandem.c"),
    ),
    (
        "weak_cache_gc.c",
        include_str!("../../../c/weak_cache_gc.c"),
    ),
    (
        "load_barrier_tandem.c",
        include_str!("../../../c/load_barrier_tandem.c"),
    ),
    ("tandem.h", include_str!("../../../../ffi/include/tandem.h")),
];

/// The compiled clients of one collector, or why there are none.
pub type Clients = Result<ClientPaths, String>;

/// Paths of one collector's compiled clients.
#[derive(Debug, Clone)]
pub struct ClientPaths {
    /// binary-trees.
    pub binary_trees: PathBuf,
    /// GCBench.
    pub gcbench: PathBuf,
    /// The weak-value cache.
    pub weak_cache: PathBuf,
    /// The load-barrier probe (Tandem only: None for libgc).
    pub load_barrier: Option<PathBuf>,
}

impl ClientPaths {
    /// The executable of `program`.
    pub fn of(&self, program: super::Program) -> &Path {
        match program {
            super::Program::BinaryTrees => &self.binary_trees,
            super::Program::Gcbench => &self.gcbench,
            super::Program::WeakCache => &self.weak_cache,
        }
    }
}

/// Writes the sources under `dir` and compiles both collectors' clients.
pub fn build(dir: &Path) -> (Clients, Clients) {
    let src = dir.join("src");
    if let Err(e) = std::fs::create_dir_all(&src).and_then(|()| {
        SOURCES
            .iter()
            .try_for_each(|(name, text)| std::fs::write(src.join(name), text))
    }) {
        let why = format!("cannot write the C sources under {}: {e}", src.display());
        return (Err(why.clone()), Err(why));
    }
    let tandem = libtandem().and_then(|lib| {
        let link = [
            lib.to_string_lossy().into_owned(),
            "-lpthread".into(),
            "-ldl".into(),
            "-lm".into(),
        ];
        Ok(ClientPaths {
            binary_trees: compile(&src, dir, "binary_trees_tandem", &link)?,
            gcbench: compile(&src, dir, "gcbench_tandem", &link)?,
            weak_cache: compile(&src, dir, "weak_cache_tandem", &link)?,
            load_barrier: Some(compile(&src, dir, "load_barrier_tandem", &link)?),
        })
    });
    let link = ["-lgc".to_string(), "-lpthread".into()];
    let libgc = (|| {
        Ok(ClientPaths {
            binary_trees: compile(&src, dir, "binary_trees_gc", &link)?,
            gcbench: compile(&src, dir, "gcbench_gc", &link)?,
            weak_cache: compile(&src, dir, "weak_cache_gc", &link)?,
            load_barrier: None,
        })
    })();
    (tandem, libgc)
}

/// Compiles `src/<name>.c` to `dir/<name>` with optimisation, linking `link`.
fn compile(src: &Path, dir: &Path, name: &str, link: &[String]) -> Result<PathBuf, String> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let exe = dir.join(name);
    let out = Command::new(&cc)
        .args(["-O2", "-std=c11", "-Wall", "-Wextra", "-o"])
        .arg(&exe)
        .arg(src.join(format!("{name}.c")))
        .arg(format!("-I{}", src.display()))
        .args(link)
        .output()
        .map_err(|e| format!("cannot run the C compiler `{cc}`: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first: Vec<&str> = err.lines().take(3).collect();
        return Err(format!("{cc} failed on {name}.c: {}", first.join(" | ")));
    }
    Ok(exe)
}

/// `libtandem.a` of this binary's profile, built (or found up to date) by cargo first:
/// cargo builds the C library only when asked for its package.
fn libtandem() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let profile_dir = exe
        .parent()
        .ok_or("this binary has no directory")?
        .to_path_buf();
    let lib = profile_dir.join("libtandem.a");
    let target_dir = profile_dir.parent().ok_or("no target directory")?;
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.args([
        "build",
        "--quiet",
        "-p",
        "tandem-ffi",
        "--lib",
        "--target-dir",
    ])
    .arg(target_dir);
    if release {
        cmd.arg("--release");
    }
    // A time limit: cargo would wait forever on a build directory another cargo holds.
    let limit = std::time::Duration::from_secs(900);
    match crate::bench::process::run_command(cmd, limit) {
        Ok(done) if done.failure(limit).is_none() => Ok(lib),
        // Without cargo (an installed binary), a library already built beside it will do.
        _ if lib.exists() => Ok(lib),
        Ok(done) => Err(format!(
            "cargo could not build libtandem.a: {}",
            done.failure(limit).unwrap_or_default()
        )),
        Err(e) => Err(format!("cannot run cargo to build libtandem.a: {e}")),
    }
}

//! Compiling C programs against `libtandem.a` and running them, shared by the C tests
//! (`tests/c_tests.rs`) and the fast-path benchmark (`benches/fastpath.rs`).
//!
//! The static library is the one cargo built for this test or bench binary's profile: it
//! sits next to the binary in `target/<profile>/deps/` or one directory up.

#![allow(dead_code)] // Each user needs a different part.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The warning and language flags every C file must compile cleanly with.
pub const STRICT_FLAGS: &[&str] = &["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"];

/// Libraries a program linked with `libtandem.a` needs besides libc.
pub const SYSTEM_LIBS: &[&str] = &["-lpthread", "-ldl", "-lm"];

/// The `ffi/` directory.
pub fn ffi_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding `tandem.h`.
pub fn include_dir() -> PathBuf {
    ffi_dir().join("include")
}

/// Where compiled programs go: one directory per profile, as each links its own library.
pub fn out_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .map_or_else(|| "unknown".into(), |n| n.to_string_lossy().into_owned());
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("tandem-c")
        .join(profile)
}

/// `libtandem.a` for this binary's profile, (re)built first.
///
/// Cargo does not build a package's `staticlib` for its own tests and benches (they cannot
/// link it), so without this step they would run against a stale library. The first call
/// runs `cargo build -p tandem-ffi --lib` for the profile and target directory this binary
/// was built in (cargo holds no lock while tests run); the library then sits in
/// `target/<profile>/deps/` or one directory up.
pub fn libtandem() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("current_exe");
            let deps = exe
                .parent()
                .expect("the binary has a directory")
                .to_path_buf();
            build_libtandem(&deps);
            find_libtandem(&deps)
        })
        .clone()
}

fn build_libtandem(deps: &Path) {
    let profile_dir = deps.parent().expect("target/<profile>");
    let mut target_dir = profile_dir.parent().expect("target/").to_path_buf();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "-p", "tandem-ffi", "--lib"]);
    let triple = target_triple();
    if target_dir.file_name().is_some_and(|n| n == triple.as_str()) {
        cmd.args(["--target", &triple]);
        target_dir = target_dir.parent().expect("target/").to_path_buf();
    }
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => cmd.args(["--profile", "dev"]),
        Some(p) => cmd.args(["--profile", p]),
        None => panic!("cannot tell the profile from {}", deps.display()),
    };
    cmd.arg("--target-dir").arg(&target_dir);
    cmd.current_dir(ffi_dir());
    match cmd.output() {
        Ok(out) => assert!(
            out.status.success(),
            "building libtandem.a failed: {cmd:?}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        // Not run by cargo (no cargo at its build-time path): use what was built before.
        Err(e) => eprintln!("cannot run {cmd:?} ({e}); using the libtandem.a already built"),
    }
}

fn find_libtandem(deps: &Path) -> PathBuf {
    let candidates = [deps.join("libtandem.a"), deps.join("../libtandem.a")];
    candidates
        .iter()
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .max_by_key(|(t, _)| *t)
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| {
            panic!(
                "libtandem.a not found in {} or its parent: build it with `cargo build -p \
                 tandem-ffi` (with --release for benchmarks)",
                deps.display()
            )
        })
}

/// The target triple, for `cc` (which reads it from the environment only in build scripts).
fn target_triple() -> String {
    if let Ok(t) = std::env::var("TARGET") {
        return t;
    }
    let arch = std::env::consts::ARCH;
    match std::env::consts::OS {
        "linux" if cfg!(target_env = "musl") => format!("{arch}-unknown-linux-musl"),
        "linux" => format!("{arch}-unknown-linux-gnu"),
        "macos" => format!("{arch}-apple-darwin"),
        os => format!("{arch}-unknown-{os}"),
    }
}

/// The C compiler `cc` picks (honouring `CC`), or the named one, at `-O2`.
pub fn compiler(name: Option<&str>) -> cc::Tool {
    let triple = target_triple();
    let mut b = cc::Build::new();
    b.target(&triple)
        .host(&triple)
        .opt_level(2)
        .debug(false)
        .cargo_metadata(false)
        .cargo_warnings(false);
    // Not `.warnings(false)`: that adds `-w`, which silences every warning, `-Werror`'s too.
    if let Some(n) = name {
        b.compiler(n);
    }
    b.get_compiler()
}

/// Whether a compiler called `name` is installed.
pub fn installed(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs a compiler command; panics with its output if it fails.
fn run_compiler(mut cmd: Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler for {what}: {e}"));
    assert!(
        out.status.success(),
        "compiling {what} failed ({})\ncommand: {cmd:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Compiles `src` (with [`STRICT_FLAGS`] and `extra` flags) and links it with `libtandem.a`
/// into an executable named `name`; returns its path.
pub fn build_program(src: &Path, name: &str, extra: &[&str]) -> PathBuf {
    std::fs::create_dir_all(out_dir()).expect("create the output directory");
    let exe = out_dir().join(name);
    // Linked under a name of this process and thread, then renamed into place: two tests
    // may build the same program while another runs it ("text file busy" otherwise).
    let tmp = out_dir().join(format!(
        "{name}.{}.{:?}.tmp",
        std::process::id(),
        std::thread::current().id()
    ));
    let mut cmd = compiler(None).to_command();
    cmd.args(STRICT_FLAGS)
        .args(extra)
        .arg("-I")
        .arg(include_dir())
        .arg(src)
        .arg(libtandem())
        .args(SYSTEM_LIBS)
        .arg("-o")
        .arg(&tmp);
    run_compiler(cmd, &src.display().to_string());
    std::fs::rename(&tmp, &exe).expect("move the program into place");
    exe
}

/// The strict flags for compiling C sources as C++11 (the header's `extern "C"` path).
pub const STRICT_CXX_FLAGS: &[&str] = &[
    "-x",
    "c++",
    "-std=c++11",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pedantic",
];

/// Compiles `src` to an object file with the compiler `name` and `flags` (no linking): a
/// check that the code and `tandem.h` are warning-free under that compiler.
pub fn compile_only(name: &str, src: &Path, flags: &[&str]) {
    std::fs::create_dir_all(out_dir()).expect("create the output directory");
    let stem = src.file_stem().unwrap().to_string_lossy();
    let obj = out_dir().join(format!("{stem}-{name}.o"));
    let mut cmd = compiler(Some(name)).to_command();
    cmd.args(flags)
        .arg("-I")
        .arg(include_dir())
        .arg("-c")
        .arg(src)
        .arg("-o")
        .arg(&obj);
    run_compiler(cmd, &format!("{} with {name}", src.display()));
}

/// What a finished program printed.
pub struct ProgramOutput {
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Runs `exe` with `args` and no `TANDEM_*` variables from our environment; panics, showing
/// its output, unless it exits with status 0 within `timeout` (it is killed after that).
pub fn run_program(exe: &Path, args: &[&str], timeout: Duration) -> ProgramOutput {
    let mut cmd = Command::new(exe);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TANDEM_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the program") {
            break Some(s);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = ProgramOutput {
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    let verdict = match status {
        Some(s) if s.success() => return output,
        Some(s) => format!("failed: {s}"),
        None => format!("timed out after {timeout:?} (killed)"),
    };
    panic!(
        "{} {verdict}\n--- stdout\n{}\n--- stderr\n{}",
        exe.display(),
        output.stdout,
        output.stderr
    );
}

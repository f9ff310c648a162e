//! Link options of the C ABI's shared library.

fn main() {
    // Every thread that used the library has a pthread key destructor of its (see
    // `src/thread.rs`): a `dlclose` while such threads live would leave glibc calling into
    // unmapped code at their exit. `-z nodelete` keeps the library loaded, as glibc already
    // does for a library with pending thread-local destructors.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    }
}

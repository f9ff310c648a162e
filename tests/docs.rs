//! The README documents every option the runtime accepts.

#[test]
fn readme_lists_every_tandem_variable() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md at the workspace root");
    for (var, _, _) in tandem::Config::TABLE {
        assert!(
            readme.contains(&format!("`{var}`")),
            "README.md does not document {var}"
        );
    }
}

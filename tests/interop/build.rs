//! Generates the Rust code of the schemas the interop tests use.

use std::path::PathBuf;

fn main() {
    let schemas = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let files: Vec<PathBuf> = ["common", "geometry", "kitchen_sink", "math"]
        .iter()
        .map(|name| schemas.join(format!("{name}.wsp")))
        .collect();
    wsp_build::compile_or_exit(&files);
}

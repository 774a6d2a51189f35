//! Generates the typed Rust of `bench.wsp`.

fn main() {
    wsp_build::compile_or_exit(&["bench.wsp"]);
}

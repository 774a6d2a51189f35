//! Generates the typed Rust for the examples' schemas: the two lines a user adds to `build.rs`.

fn main() {
    wsp_build::compile_or_exit(&["../schemas/math.wsp", "../schemas/chat.wsp"]);
}

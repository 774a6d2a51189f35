//! The schemas docs/rust.md's examples use, with the options its build.rs example shows (so the
//! attribute in that example is checked to compile).

fn main() {
    wsp_build::configure()
        .type_attribute("geometry.Point", "#[derive(PartialOrd)]")
        .compile_or_exit(&[
            "../../schemas/geometry.wsp",
            "../../schemas/kitchen_sink.wsp",
        ]);
}

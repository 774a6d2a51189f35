// build.rs: the roots; imported schemas (shapes.wsp) are found and compiled too.
fn main() {
    wsp_build::compile_or_exit(&["schemas/plot.wsp"]);
}

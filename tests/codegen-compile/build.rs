//! Compiles every schema in `schemas/`; the evolution versions share names, so each goes into its
//! own directory under `OUT_DIR`.

use std::path::PathBuf;

fn main() {
    let schemas = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let all: Vec<PathBuf> = [
        "chat",
        "common",
        "geometry",
        "keywords",
        "kitchen_sink",
        "math",
    ]
    .iter()
    .map(|name| schemas.join(format!("{name}.wsp")))
    .chain([PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas/deprecation.wsp")])
    .collect();
    wsp_build::compile_or_exit(&all);
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set for build scripts"));
    // One side only: the generated code must compile warning-free without the other side.
    let sides = [
        &schemas.join("geometry.wsp"),
        &schemas.join("kitchen_sink.wsp"),
    ];
    wsp_build::configure()
        .out_dir(out.join("server_only"))
        .build_client(false)
        .compile_or_exit(&sides);
    wsp_build::configure()
        .out_dir(out.join("client_only"))
        .build_server(false)
        .compile_or_exit(&sides);
    for version in ["v1", "v2"] {
        wsp_build::configure()
            .out_dir(out.join(version))
            .compile_or_exit(&[schemas.join(format!("evolution/{version}.wsp"))]);
    }
}

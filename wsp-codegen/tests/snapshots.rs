//! Snapshots of the Rust generated for every schema in `schemas/` (review changes with
//! `cargo insta review`). The evolution versions are loaded separately: they share names.

fn snapshot_schema(stem: &str, path: &str) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    let model = wsp_idl::load(&[root.join(path)]).unwrap_or_else(|e| panic!("{e}"));
    let files = wsp_codegen::generate(&model, &wsp_codegen::Opts::default()).expect("generates");
    let fast = wsp_codegen::generate(
        &model,
        &wsp_codegen::Opts {
            pretty: false,
            ..wsp_codegen::Opts::default()
        },
    )
    .expect("generates");
    assert_eq!(files.len(), fast.len());
    for (file, fast) in files.iter().zip(&fast) {
        // The fast layout (what build scripts write) is Rust too; that it is the same code as
        // prettyplease's is checked token by token in `rust::layout`'s tests.
        assert_eq!(file.name, fast.name);
        if let Err(e) = syn::parse_file(&fast.contents) {
            panic!("{}: the fast layout does not parse: {e}", fast.name);
        }
        if stem == "kitchen_sink" {
            let name = format!("{stem}__{}__fast", fast.name.trim_end_matches(".rs"));
            insta::assert_snapshot!(name, fast.contents);
        }
    }
    for file in files {
        // One lint allowance for the whole module, not one per item; and no generated wire
        // newtypes (parameters that need an adapter use the runtime's documented `Wire`).
        assert_eq!(
            file.contents.matches("#[allow(").count(),
            1,
            "{}",
            file.name
        );
        assert!(!file.contents.contains("__Wire"), "{}", file.name);
        // Docs of undocumented fields and variants say something ("`x: f64` in the schema").
        for line in file.contents.lines() {
            let line = line.trim();
            assert!(
                !(line.starts_with("/// The `")
                    && (line.ends_with("` field.") || line.ends_with("` variant."))),
                "{}: {line}",
                file.name
            );
        }
        let name = format!("{stem}__{}", file.name.trim_end_matches(".rs"));
        insta::assert_snapshot!(name, file.contents);
    }
}

#[test]
fn chat() {
    snapshot_schema("chat", "chat.wsp");
}

#[test]
fn geometry_and_common() {
    snapshot_schema("geometry", "geometry.wsp");
}

#[test]
fn keywords() {
    snapshot_schema("keywords", "keywords.wsp");
}

#[test]
fn kitchen_sink() {
    snapshot_schema("kitchen_sink", "kitchen_sink.wsp");
}

#[test]
fn math() {
    snapshot_schema("math", "math.wsp");
}

#[test]
fn evolution_v1() {
    snapshot_schema("evolution_v1", "evolution/v1.wsp");
}

#[test]
fn evolution_v2() {
    snapshot_schema("evolution_v2", "evolution/v2.wsp");
}

#[test]
fn server_only_and_client_only() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    let model = wsp_idl::load(&[root.join("geometry.wsp")]).expect("valid");
    let server = wsp_codegen::Opts {
        build_client: false,
        ..Default::default()
    };
    let files = wsp_codegen::generate(&model, &server).expect("generates");
    let geometry = &files
        .iter()
        .find(|f| f.name == "geometry.rs")
        .expect("geometry")
        .contents;
    assert!(geometry.contains("pub struct GeometryServer<T>"));
    assert!(geometry.contains("pub struct GeometryCallbacksClient"));
    assert!(!geometry.contains("pub struct GeometryClient "));
    assert!(!geometry.contains("pub trait GeometryCallbacks"));
    let client = wsp_codegen::Opts {
        build_server: false,
        ..Default::default()
    };
    let files = wsp_codegen::generate(&model, &client).expect("generates");
    let geometry = &files
        .iter()
        .find(|f| f.name == "geometry.rs")
        .expect("geometry")
        .contents;
    assert!(!geometry.contains("pub struct GeometryServer<T>"));
    assert!(geometry.contains("pub struct GeometryClient "));
    assert!(geometry.contains("pub trait GeometryCallbacks"));
}

#[test]
fn extra_attributes_are_applied_and_checked() {
    let mut loader = wsp_idl::Loader::new();
    loader.add_source(
        "p.wsp",
        "package p; struct A { x: u32 } struct B { y: u32 }",
    );
    let model = loader.load(&["p.wsp"]).expect("valid");
    let opts = wsp_codegen::Opts {
        type_attributes: vec![
            ("p.A".into(), "#[derive(PartialOrd)]".into()),
            (".".into(), "#[non_exhaustive]".into()),
        ],
        field_attributes: vec![("p.B.y".into(), "#[doc(alias = \"why\")]".into())],
        ..Default::default()
    };
    let out = &wsp_codegen::generate(&model, &opts).expect("generates")[0].contents;
    assert_eq!(out.matches("#[derive(PartialOrd)]").count(), 1);
    assert_eq!(out.matches("#[non_exhaustive]").count(), 2);
    assert!(
        out.contains(
            "#[doc(alias = \"why\")]\n        /// `y: u32` in the schema.\n        pub y: u32"
        ),
        "{out}"
    );

    let bad = wsp_codegen::Opts {
        type_attributes: vec![("p.A".into(), "#[derive(".into())],
        ..Default::default()
    };
    let err = wsp_codegen::generate(&model, &bad).unwrap_err().to_string();
    assert!(
        err.starts_with("error: invalid attribute `#[derive(` for `p.A`"),
        "{err}"
    );
}

#[test]
fn colliding_generated_names_are_an_error() {
    let mut loader = wsp_idl::Loader::new();
    loader.add_source(
        "p.wsp",
        "package p; struct GeoClient { x: u32 } service Geo { rpc a(); }",
    );
    let model = loader.load(&["p.wsp"]).expect("valid");
    let err = wsp_codegen::generate(&model, &wsp_codegen::Opts::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "error: in package `p`, type `p.GeoClient` and the client of service `p.Geo` would both \
         be named `GeoClient` in Rust; rename one of them"
    );
    // Without the client side there is no collision.
    let server = wsp_codegen::Opts {
        build_client: false,
        ..Default::default()
    };
    assert!(wsp_codegen::generate(&model, &server).is_ok());
}

#[test]
fn a_service_named_t_gets_another_type_parameter() {
    let mut loader = wsp_idl::Loader::new();
    loader.add_source("p.wsp", "package p; service T { rpc a(); }");
    let model = loader.load(&["p.wsp"]).expect("valid");
    let out = &wsp_codegen::generate(&model, &wsp_codegen::Opts::default()).expect("generates")[0];
    assert!(
        out.contents.contains("pub struct TServer<Impl>"),
        "{}",
        out.contents
    );
    assert!(
        out.contents.contains("impl<Impl: T> TServer<Impl>"),
        "{}",
        out.contents
    );
}

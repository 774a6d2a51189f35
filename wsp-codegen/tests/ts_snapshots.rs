//! Snapshots of the generated TypeScript for every example schema, and the check that the copy
//! under `ts/generated/` (which the TypeScript tests import) is up to date.
//!
//! After a generator change: `cargo insta review` for the snapshots, then
//! `WSP_UPDATE_GENERATED=1 cargo test -p wsp-codegen --test ts_snapshots` to rewrite
//! `ts/generated/`.

use std::path::{Path, PathBuf};

use wsp_codegen::ts::{Int64, TsOpts};
use wsp_codegen::{GeneratedFile, Opts};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in the workspace")
        .to_owned()
}

fn generate(files: &[PathBuf], ts: &TsOpts) -> Vec<GeneratedFile> {
    let model = wsp_idl::load(files).unwrap_or_else(|e| panic!("{e}"));
    wsp_codegen::ts::generate_with(&model, &Opts::default(), ts).expect("generates")
}

/// The example schemas (all loaded together), each evolution version on its own, the benchmark's
/// schema, and two schemas with 64-bit integers as `number`: the groups, the directory under `ts/generated/` each one is
/// checked in at, and the options.
fn groups() -> Vec<(&'static str, Vec<PathBuf>, TsOpts)> {
    let schemas = root().join("schemas");
    let mut main: Vec<PathBuf> = std::fs::read_dir(&schemas)
        .expect("schemas/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wsp"))
        .collect();
    main.sort();
    let number = TsOpts {
        int64: Int64::Number,
        ..TsOpts::default()
    };
    vec![
        ("", main, TsOpts::default()),
        (
            "evolution/v1",
            vec![schemas.join("evolution/v1.wsp")],
            TsOpts::default(),
        ),
        (
            "evolution/v2",
            vec![schemas.join("evolution/v2.wsp")],
            TsOpts::default(),
        ),
        // The benchmark's schema: `ts/tests/bench` imports its generated client.
        (
            "bench",
            vec![root().join("bench/bench.wsp")],
            TsOpts::default(),
        ),
        (
            "int64-number",
            vec![schemas.join("math.wsp"), schemas.join("kitchen_sink.wsp")],
            number,
        ),
    ]
}

#[test]
fn snapshots() {
    for (dir, files, ts) in groups() {
        for file in generate(&files, &ts) {
            let name = if dir.is_empty() {
                file.name.clone()
            } else {
                format!("{}_{}", dir.replace(['/', '-'], "_"), file.name)
            };
            insta::assert_snapshot!(name, file.contents);
        }
    }
}

#[test]
fn checked_in_copy_is_up_to_date() {
    let update = std::env::var_os("WSP_UPDATE_GENERATED").is_some();
    let mut stale = Vec::new();
    for (dir, files, ts) in groups() {
        let out = root().join("ts/generated").join(dir);
        let generated = generate(&files, &ts);
        if update {
            wsp_codegen::write_files(&out, &generated).expect("writes");
        }
        for file in &generated {
            let path = out.join(&file.name);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(file.contents.as_str()) {
                stale.push(path.display().to_string());
            }
        }
        let names: Vec<&str> = generated.iter().map(|f| f.name.as_str()).collect();
        for entry in std::fs::read_dir(&out).expect("ts/generated exists") {
            let path = entry.expect("dir entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if path.is_file() && !names.contains(&name) {
                stale.push(format!("{} (not generated any more)", path.display()));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "ts/generated is out of date; run `WSP_UPDATE_GENERATED=1 cargo test -p wsp-codegen \
         --test ts_snapshots`:\n{}",
        stale.join("\n")
    );
}

#[test]
fn runtime_module_is_configurable() {
    let mut loader = wsp_idl::Loader::new();
    loader.add_source("a.wsp", "package a;\nstruct P { x: f64 }\n");
    let model = loader.load(&["a.wsp"]).expect("valid");
    let ts = TsOpts {
        runtime_module: "../runtime/src/index.js".to_owned(),
        ..TsOpts::default()
    };
    let files = wsp_codegen::ts::generate_with(&model, &Opts::default(), &ts).expect("generates");
    assert!(
        files[0]
            .contents
            .contains("import * as $wsp from '../runtime/src/index.js';")
    );
}

#[test]
fn colliding_names_are_reported() {
    let mut loader = wsp_idl::Loader::new();
    loader.add_source(
        "a.wsp",
        "package a;\nstruct P { x: i64 }\nstruct decodeP { y: bool }\n",
    );
    let model = loader.load(&["a.wsp"]).expect("valid");
    let err = wsp_codegen::ts::generate(&model, &Opts::default()).expect_err("collides");
    assert_eq!(
        err.to_string(),
        "error: TypeScript: `a.decodeP` and `a.P` both generate `decodeP`; rename one of them"
    );
}

#[test]
fn sides_can_be_left_out() {
    let mut loader = wsp_idl::Loader::new();
    loader.add_source(
        "a.wsp",
        "package a;\nservice S { rpc f() -> bool; client { rpc g(); } }\n",
    );
    let model = loader.load(&["a.wsp"]).expect("valid");
    let client_only = Opts {
        build_server: false,
        ..Opts::default()
    };
    let text = &wsp_codegen::ts::generate(&model, &client_only).expect("generates")[0].contents;
    assert!(text.contains("export class SClient") && text.contains("registerSCallbacks"));
    assert!(!text.contains("serveS") && !text.contains("SCallbacksClient"));
    let server_only = Opts {
        build_client: false,
        ..Opts::default()
    };
    let text = &wsp_codegen::ts::generate(&model, &server_only).expect("generates")[0].contents;
    assert!(text.contains("serveS") && text.contains("export class SCallbacksClient"));
    assert!(!text.contains("export class SClient") && !text.contains("registerSCallbacks"));
}

#[test]
fn generate_dispatches_typescript() {
    let files = vec![root().join("schemas/math.wsp")];
    let model = wsp_idl::load(&files).expect("valid");
    let opts = Opts {
        lang: wsp_codegen::Lang::TypeScript,
        ..Opts::default()
    };
    assert_eq!(
        wsp_codegen::generate(&model, &opts).expect("generates"),
        generate(&files, &TsOpts::default())
    );
}

#[test]
fn cli_passes_typescript_options() {
    let out = std::env::temp_dir().join(format!("wsp-codegen-ts-cli-{}", std::process::id()));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_wsp-codegen"))
        .args([
            "generate",
            "--lang",
            "ts",
            "--ts-runtime",
            "./rt.js",
            "--ts-int64",
            "number",
            "-o",
        ])
        .arg(&out)
        .arg(root().join("schemas/math.wsp"))
        .status()
        .expect("runs");
    assert!(status.success());
    let math = std::fs::read_to_string(out.join("math.ts")).expect("written");
    assert!(math.contains("import * as $wsp from './rt.js';"), "{math}");
    assert!(math.contains("add(values: number[]"), "{math}");
    std::fs::remove_dir_all(&out).expect("cleans up");
}

//! `wsp-codegen check` and `generate`: exit codes, stdout/stderr, files written, `--help`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wsp-codegen"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsp-codegen-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn check_of_valid_schemas_prints_nothing_and_exits_0() {
    let schemas = Path::new("../schemas");
    let mut args = vec!["check".to_owned()];
    for name in [
        "chat",
        "common",
        "geometry",
        "keywords",
        "kitchen_sink",
        "math",
    ] {
        args.push(schemas.join(format!("{name}.wsp")).display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    assert!(out.stderr.is_empty());
    for v in ["v1", "v2"] {
        let out = run(&["check", &format!("../schemas/evolution/{v}.wsp")]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn check_of_invalid_schemas_prints_every_error_to_stderr_and_exits_1() {
    let dir = temp_dir("invalid");
    let a = dir.join("a.wsp");
    let b = dir.join("b.wsp");
    std::fs::write(&a, "package a;\nstruct P { x: Pont, x: i32 }\n").expect("write");
    std::fs::write(&b, "package b;\nstruct Q { m: map<f64, i32> }\n").expect("write");
    let out = run(&["check", &a.display().to_string(), &b.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).expect("utf-8");
    assert!(stderr.contains("error: unknown type `Pont`"), "{stderr}");
    assert!(
        stderr.contains("error: duplicate field `x` in struct `P`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("error: invalid map key type `f64`"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("--> {}:2:15", a.display())),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("error: could not validate the schema due to 3 errors\n"),
        "{stderr}"
    );
    assert!(!stderr.contains('\x1b'), "no colour codes");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn check_of_a_missing_file_exits_1() {
    let out = run(&["check", "does/not/exist.wsp"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).expect("utf-8");
    assert!(
        stderr.starts_with("error: cannot read `does/not/exist.wsp`"),
        "{stderr}"
    );
}

#[test]
fn help_documents_every_subcommand() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).expect("utf-8");
    assert!(help.contains("check"), "{help}");
    assert!(help.contains("Validate schema files"), "{help}");
    assert!(help.contains("generate"), "{help}");
    assert!(help.contains("Generate code for schema files"), "{help}");
    let out = run(&["check", "--help"]);
    let help = String::from_utf8(out.stdout).expect("utf-8");
    assert!(help.contains("<FILE>..."), "{help}");
}

#[test]
fn check_without_files_is_a_usage_error() {
    let out = run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn generate_rust_writes_one_file_per_package_and_keeps_unchanged_files() {
    let dir = temp_dir("generate");
    let out_dir = dir.join("out");
    let args = [
        "generate",
        "--lang",
        "rust",
        "-o",
        out_dir.to_str().expect("utf-8 path"),
        "../schemas/geometry.wsp",
        "../schemas/kitchen_sink.wsp",
    ];
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .expect("out dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["common.rs", "geometry.rs", "kitchen.sink.rs"]);

    // The same text as the library (and so as wsp-build) generates.
    let model =
        wsp_idl::load(&["../schemas/geometry.wsp", "../schemas/kitchen_sink.wsp"]).expect("valid");
    let files = wsp_codegen::generate(&model, &wsp_codegen::Opts::default()).expect("generates");
    for f in &files {
        let written = std::fs::read_to_string(out_dir.join(&f.name)).expect("written");
        assert_eq!(written, f.contents, "{}", f.name);
    }

    // A second run leaves the files untouched.
    let geometry = out_dir.join("geometry.rs");
    let before = std::fs::metadata(&geometry)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(run(&args).status.success());
    let after = std::fs::metadata(&geometry)
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(before, after);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn generate_of_an_invalid_schema_prints_diagnostics_and_exits_1() {
    let dir = temp_dir("generate-invalid");
    let a = dir.join("a.wsp");
    std::fs::write(&a, "package a;\nstruct P { x: Pont }\n").expect("write");
    let out_dir = dir.join("out");
    let out = run(&[
        "generate",
        "--lang",
        "rust",
        "-o",
        out_dir.to_str().expect("utf-8"),
        a.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).expect("utf-8");
    assert!(stderr.contains("error: unknown type `Pont`"), "{stderr}");
    assert!(
        stderr.contains(&format!("--> {}:2:15", a.display())),
        "{stderr}"
    );
    assert!(!out_dir.exists());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn generate_accepts_ts_and_rejects_unknown_languages() {
    let dir = temp_dir("generate-ts");
    let out = run(&[
        "generate",
        "--lang",
        "ts",
        "-o",
        dir.to_str().expect("utf-8"),
        "../schemas/math.wsp",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("math.ts").exists());
    let out = run(&[
        "generate",
        "--lang",
        "cobol",
        "-o",
        "x",
        "../schemas/math.wsp",
    ]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn generate_help_documents_its_options() {
    let out = run(&["generate", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).expect("utf-8");
    for needle in [
        "--lang",
        "rust",
        "ts",
        "--out-dir",
        "--no-server",
        "--no-client",
        "--type-attribute",
        "--field-attribute",
    ] {
        assert!(help.contains(needle), "{needle} missing in:\n{help}");
    }
}

#[test]
fn lang_without_a_subcommand_generates_like_generate() {
    let dir = temp_dir("implied-generate");
    for lang in ["rust", "ts"] {
        let implied = dir.join(format!("implied-{lang}"));
        let explicit = dir.join(format!("explicit-{lang}"));
        for (out_dir, subcommand) in [(&implied, None), (&explicit, Some("generate"))] {
            let mut args: Vec<&str> = subcommand.into_iter().collect();
            args.extend([
                "--lang",
                lang,
                "-o",
                out_dir.to_str().expect("utf-8 path"),
                "../schemas/math.wsp",
            ]);
            let out = run(&args);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let ext = if lang == "rust" { "rs" } else { "ts" };
        let read =
            |d: &PathBuf| std::fs::read_to_string(d.join(format!("math.{ext}"))).expect("written");
        assert_eq!(read(&implied), read(&explicit));
    }
}

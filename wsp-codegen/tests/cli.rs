//! `wsp-codegen check`: exit codes, stdout/stderr, `--help`.

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
    let out = run(&["check", "--help"]);
    let help = String::from_utf8(out.stdout).expect("utf-8");
    assert!(help.contains("<FILE>..."), "{help}");
}

#[test]
fn check_without_files_is_a_usage_error() {
    let out = run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
}

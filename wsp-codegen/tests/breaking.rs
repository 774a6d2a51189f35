//! `wsp-codegen breaking`: the corpus under `tests/breaking`, through the real binary.
//!
//! - `breaks/<case>/{old,new}/`: a schema version pair with breaking changes; the command must
//!   exit 1 and print exactly `breaks/<case>/expected.stderr`. Run with `WSP_BLESS=1` to rewrite
//!   the goldens, then review every changed golden by reading it.
//! - `compatible/<case>/{old,new}/`: a pair that must pass (exit 0, nothing printed) in both
//!   directions where the change is symmetric, and at least old → new.
//!
//! `schemas/evolution` (v1 → v2), whose peers `tests/codegen-compile/tests/evolution.rs` and the
//! TS generated tests run against each other on the wire, must pass too.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wsp-codegen"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cases(kind: &str) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(manifest_dir().join("tests/breaking").join(kind))
        .expect("the corpus exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_dir())
        .map(|p| {
            p.strip_prefix(manifest_dir())
                .expect("under the crate")
                .to_owned()
        })
        .collect();
    cases.sort();
    cases
}

fn compare(case: &Path, old: &str, new: &str) -> Output {
    let old = case.join(old).display().to_string();
    let new = case.join(new).display().to_string();
    run(&["breaking", "--against", &old, &new], manifest_dir())
}

#[test]
fn every_breaking_pair_fails_with_its_golden_diagnostics() {
    let bless = std::env::var_os("WSP_BLESS").is_some_and(|v| v == "1");
    let cases = cases("breaks");
    assert!(
        cases.len() >= 15,
        "expected the corpus, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let out = compare(case, "old", "new");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.code() != Some(1) {
            failures.push(format!(
                "{}: exit code {:?}, expected 1\n{stderr}",
                case.display(),
                out.status.code()
            ));
            continue;
        }
        assert!(
            out.stdout.is_empty(),
            "{}: printed to stdout",
            case.display()
        );
        let golden = manifest_dir().join(case).join("expected.stderr");
        if bless {
            fs::write(&golden, &stderr).expect("golden is writable");
            continue;
        }
        match fs::read_to_string(&golden) {
            Ok(expected) if expected == stderr => {}
            Ok(expected) => failures.push(format!(
                "{}: diagnostics differ\n--- expected\n{expected}\n--- actual\n{stderr}",
                case.display()
            )),
            Err(_) => failures.push(format!(
                "{}: no golden file (run with WSP_BLESS=1 and review it)\n--- actual\n{stderr}",
                case.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_compatible_pair_passes() {
    let cases = cases("compatible");
    assert!(
        cases.len() >= 8,
        "expected the corpus, found {}",
        cases.len()
    );
    for case in &cases {
        let out = compare(case, "old", "new");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            case.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stderr.is_empty() && out.stdout.is_empty());
    }
}

#[test]
fn the_evolution_schemas_on_the_wire_are_compatible_and_not_backwards() {
    let out = compare(Path::new("../schemas/evolution"), "v1.wsp", "v2.wsp");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Going back is not compatible: v1 reuses the name v2 reserves, and drops what v2 added.
    let back = compare(Path::new("../schemas/evolution"), "v2.wsp", "v1.wsp");
    assert_eq!(back.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&back.stderr);
    assert!(
        stderr.contains("reuses a name reserved in the old schema"),
        "{stderr}"
    );
}

#[test]
fn every_golden_has_a_case_and_every_case_one_change_at_least() {
    for case in cases("breaks") {
        let golden = manifest_dir().join(&case).join("expected.stderr");
        assert!(golden.exists(), "{}: no golden", case.display());
    }
    for case in cases("compatible") {
        let old = fs::read_to_string(manifest_dir().join(&case).join("old/schema.wsp"));
        let new = fs::read_to_string(manifest_dir().join(&case).join("new/schema.wsp"));
        assert_ne!(
            old.expect("old schema"),
            new.expect("new schema"),
            "{}: the pair is identical, so it tests nothing",
            case.display()
        );
    }
}

#[test]
fn json_output_has_every_break_with_its_location() {
    let case = Path::new("tests/breaking/breaks/parameters_changed");
    let old = case.join("old").display().to_string();
    let new = case.join("new").display().to_string();
    let out = run(
        &["breaking", "--json", "--against", &old, &new],
        manifest_dir(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.is_empty());
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let diagnostics = value["diagnostics"].as_array().expect("diagnostics");
    assert_eq!(value["breaking"], diagnostics.len());
    assert_eq!(diagnostics.len(), 6, "{value:#}");
    let first = &diagnostics[0];
    assert_eq!(
        first["message"],
        "parameter `shop.Shop/buy(count)` changed type from `u32` to `u64`"
    );
    assert_eq!(
        first["file"],
        "tests/breaking/breaks/parameters_changed/new/schema.wsp"
    );
    assert_eq!(
        (first["line"].as_u64(), first["column"].as_u64()),
        (Some(4), Some(33))
    );
    assert_eq!(
        first["notes"][0]["file"],
        "tests/breaking/breaks/parameters_changed/old/schema.wsp"
    );
    assert!(
        first["rendered"]
            .as_str()
            .expect("rendered")
            .contains(" --> ")
    );

    let compatible = Path::new("tests/breaking/compatible/parameter_renamed");
    let old = compatible.join("old").display().to_string();
    let new = compatible.join("new").display().to_string();
    let out = run(
        &["breaking", "--json", "--against", &old, &new],
        manifest_dir(),
    );
    assert_eq!(out.status.code(), Some(0));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(value["breaking"], 0);
}

#[test]
fn a_version_that_does_not_load_exits_2() {
    let dir = std::env::temp_dir().join(format!("wsp-breaking-bad-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    fs::write(dir.join("old.wsp"), "package a; struct P { x: f64 }").expect("write");
    fs::write(dir.join("new.wsp"), "package a; struct P { x: Nope }").expect("write");
    let out = run(&["breaking", "--against", "old.wsp", "new.wsp"], &dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown type `Nope`"), "{stderr}");
    assert!(
        stderr.contains("the new version of the schema does not load"),
        "{stderr}"
    );
    fs::remove_dir_all(&dir).expect("cleanup");
}

/// `--against-rev`: the old version is read from git, imports included, and nothing of the
/// working tree leaks into it.
#[test]
fn the_old_version_can_come_from_a_git_revision() {
    let dir = std::env::temp_dir().join(format!("wsp-breaking-git-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let schemas = dir.join("schemas");
    fs::create_dir_all(&schemas).expect("temp dir");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q"]);
    let write = |path: PathBuf, text: &str| fs::write(path, text).expect("write");
    write(
        schemas.join("common.wsp"),
        "package common;\nstruct Time { millis: u64 }\n",
    );
    // Imports one file beside it and one outside the directory the command may run in.
    write(
        schemas.join("app.wsp"),
        "package app;\nimport \"common.wsp\";\nimport \"../shared/id.wsp\";\n\
         service App { rpc now(id: shared.Id) -> common.Time; }\n",
    );
    fs::create_dir_all(dir.join("shared")).expect("dir");
    write(
        dir.join("shared/id.wsp"),
        "package shared;\nstruct Id { v: u64 }\n",
    );
    // Deleted later: its service is then removed.
    write(
        schemas.join("extra.wsp"),
        "package extra;\nservice Extra { rpc x(); }\n",
    );
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "v1"]);

    // Unchanged: compatible, from the repository's top and from a subdirectory.
    for (args, at) in [(["schemas/app.wsp"], &dir), (["app.wsp"], &schemas)] {
        let mut all = vec!["breaking", "--against-rev", "HEAD"];
        all.extend(args);
        let out = run(&all, at);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
    }

    // The imported files change in the working tree and one file is deleted: the old version
    // is read from git, and the deleted file's service is reported as removed.
    write(
        schemas.join("common.wsp"),
        "package common;\nstruct Time { nanos: u64 }\n",
    );
    write(
        dir.join("shared/id.wsp"),
        "package shared;\nstruct Id { v: u32 }\n",
    );
    fs::remove_file(schemas.join("extra.wsp")).expect("delete");
    let out = run(&["breaking", "--against-rev", "HEAD", "schemas"], &dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("required field `common.Time.nanos` was added"),
        "{stderr}"
    );
    assert!(
        stderr.contains("required field `common.Time.millis` was removed"),
        "{stderr}"
    );
    assert!(stderr.contains("--> schemas/common.wsp:2:"), "{stderr}");
    assert!(
        stderr.contains("field `shared.Id.v` changed type"),
        "{stderr}"
    );
    assert!(
        stderr.contains("service `extra.Extra` was removed"),
        "{stderr}"
    );
    // From the subdirectory, through the import that leaves it.
    let out = run(&["breaking", "--against-rev", "HEAD", "app.wsp"], &schemas);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("field `shared.Id.v` changed type"),
        "{stderr}"
    );
    fs::remove_dir_all(&dir).expect("cleanup");
}

//! `wsp-build` in a real build script: one scratch crate (in a temp dir, depending on this
//! crate by absolute path) reused across steps. A broken schema fails `cargo build` with the
//! rendered diagnostic; a valid one builds; an unrelated change does not rerun the build script,
//! a change to an imported schema does.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Runs `cargo build` in `dir`, killing it after `limit`.
fn cargo_build(dir: &Path, target: &Path, limit: Duration) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.arg("build").arg("--quiet").current_dir(dir);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" || key == "RUSTFLAGS" {
            cmd.env_remove(key);
        }
    }
    cmd.env("CARGO_TARGET_DIR", target)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("cargo runs");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("waits").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("cargo build took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
    std::fs::write(path, text).expect("writes");
}

fn runs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("runs.txt"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[test]
fn build_script_diagnostics_and_rerun_if_changed() {
    let wsp_build = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = wsp_build.parent().expect("workspace root");
    let dir: PathBuf =
        std::env::temp_dir().join(format!("wsp-build-scratch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // A target dir of its own: the outer cargo holds the lock of the workspace's.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("wsp-build-scratch");

    write(
        &dir.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"scratch\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
             [workspace]\n\n[build-dependencies]\nwsp-build = {{ path = {:?} }}\n",
            wsp_build.display().to_string()
        ),
    );
    // Same dependency versions as the workspace, so nothing is resolved anew.
    std::fs::copy(workspace.join("Cargo.lock"), dir.join("Cargo.lock")).expect("copies the lock");
    write(
        &dir.join("build.rs"),
        "use std::io::Write;\n\
         fn main() {\n\
             let mut f = std::fs::OpenOptions::new().create(true).append(true)\n\
                 .open(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/runs.txt\")).unwrap();\n\
             writeln!(f, \"run\").unwrap();\n\
             wsp_build::compile_or_exit(&[\"schemas/app.wsp\"]);\n\
         }\n",
    );
    write(
        &dir.join("src/lib.rs"),
        "pub const GENERATED: &str = include_str!(concat!(env!(\"OUT_DIR\"), \"/app.rs\"));\n",
    );
    write(
        &dir.join("schemas/common.wsp"),
        "package common;\nstruct Id { value: u32 }\n",
    );
    write(
        &dir.join("schemas/app.wsp"),
        "package app;\nimport \"common.wsp\";\n\nstruct Point {\n    x: f64,\n    at: common.Idd,\n}\n",
    );

    // 1. A broken schema fails the build with the rendered diagnostic.
    let out = cargo_build(&dir, &target, Duration::from_secs(420));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the build must fail:\n{stderr}");
    assert!(
        stderr.contains("error: unknown type `common.Idd`"),
        "{stderr}"
    );
    assert!(stderr.contains("--> schemas/app.wsp:6:9"), "{stderr}");
    assert!(stderr.contains("6 |     at: common.Idd,"), "{stderr}");
    assert!(stderr.contains("^^^^^^^^^^"), "{stderr}");
    assert!(
        !stderr.contains("\\n"),
        "no debug-escaped newlines:\n{stderr}"
    );
    assert_eq!(runs(&dir), 1);

    // 2. Fixed: it builds.
    write(
        &dir.join("schemas/app.wsp"),
        "package app;\nimport \"common.wsp\";\n\nstruct Point {\n    x: f64,\n    at: common.Id,\n}\n",
    );
    let out = cargo_build(&dir, &target, Duration::from_secs(240));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(runs(&dir), 2);

    // 3. An unrelated change does not rerun the build script.
    write(
        &dir.join("src/lib.rs"),
        "pub const GENERATED: &str = include_str!(concat!(env!(\"OUT_DIR\"), \"/app.rs\"));\n\
         pub const OTHER: u8 = 1;\n",
    );
    let out = cargo_build(&dir, &target, Duration::from_secs(240));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(runs(&dir), 2, "the build script must not rerun");

    // 4. A change to an imported schema does.
    std::thread::sleep(Duration::from_millis(1100)); // coarse mtimes
    write(
        &dir.join("schemas/common.wsp"),
        "package common;\nstruct Id { value: u64 }\n",
    );
    let out = cargo_build(&dir, &target, Duration::from_secs(240));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        runs(&dir),
        3,
        "the build script must rerun for an imported schema"
    );

    let _ = std::fs::remove_dir_all(&dir);
}

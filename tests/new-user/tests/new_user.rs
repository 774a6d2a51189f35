//! The new-user path: a crate outside the workspace, made from `template/` the way README.md
//! tells a user to make one, builds against this checkout's `wsp-runtime` and `wsp-build` and
//! makes typed calls.
//!
//! It runs `cargo run --offline` with `CARGO_TARGET_DIR` at `target/new-user` (or
//! `$CARGO_TARGET_DIR/new-user`), so later runs reuse the compiled dependencies; the workspace's
//! `Cargo.lock` is copied in so that versions resolve offline. A cold build took 105 s on 2 shared
//! cores, a warm one a few seconds; the run is bounded by [`TIMEOUT`].

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The bound on the build and run (a cold build of wsp-runtime's dependencies included).
const TIMEOUT: Duration = Duration::from_secs(20 * 60);

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn repo() -> PathBuf {
    manifest_dir()
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// A directory under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("creates a temporary directory");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("creates a directory");
    for entry in std::fs::read_dir(from).expect("reads the template") {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copies a template file");
        }
    }
}

/// Waits for `child` at most `timeout`, killing it then; returns its status, stdout and stderr.
fn wait_bounded(mut child: Child, timeout: Duration) -> (Option<i32>, String, String) {
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits for cargo") {
            break status.code();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`cargo run` of the new user's crate did not finish within {timeout:?}\nstderr:\n{}",
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (
        status,
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    )
}

#[test]
fn a_crate_outside_the_workspace_builds_serves_and_calls() {
    let repo = repo();
    let dir = TempDir::new("wsp-new-user");
    let project = dir.0.join("first-day");
    copy_dir(&manifest_dir().join("template"), &project);

    // Cargo.toml with path dependencies on this checkout (a user writes versions from crates.io).
    let manifest = project.join("Cargo.toml.in");
    let text = std::fs::read_to_string(&manifest).expect("reads Cargo.toml.in");
    let wsp = repo.to_str().expect("a UTF-8 path").replace('\\', "/");
    std::fs::write(project.join("Cargo.toml"), text.replace("@WSP@", &wsp))
        .expect("writes Cargo.toml");
    std::fs::remove_file(&manifest).expect("removes Cargo.toml.in");
    std::fs::copy(repo.join("Cargo.lock"), project.join("Cargo.lock")).expect("copies Cargo.lock");

    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target"))
        .join("new-user");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let started = Instant::now();
    let child = Command::new(cargo)
        .args(["run", "--offline", "--quiet"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", &target)
        // No debug info: a user's default would make this directory some 850 MB instead of 420.
        .env("CARGO_PROFILE_DEV_DEBUG", "false")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts cargo");
    let (status, stdout, stderr) = wait_bounded(child, TIMEOUT);
    eprintln!(
        "cargo run of the new user's crate took {:?}",
        started.elapsed()
    );

    assert_eq!(
        status,
        Some(0),
        "cargo run failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        ["centroid 2 1", "count [1, 2, 3]"],
        "stderr:\n{stderr}"
    );

    #[cfg(unix)]
    serve_until_sigterm(&target.join("debug").join("first-day"));
}

/// `first-day serve` serves until SIGTERM (`Server::serve_until(shutdown_signal())`), then exits
/// cleanly.
#[cfg(unix)]
fn serve_until_sigterm(bin: &Path) {
    let mut child = Command::new(bin)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts first-day serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(line) if line.starts_with("serving on ws://127.0.0.1:") => {}
        other => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`first-day serve` did not report serving: {other:?}");
        }
    }
    let pid = child.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("runs kill");
    assert!(sent.success(), "kill -TERM {pid} failed");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("waits for first-day") {
            assert!(
                status.success(),
                "`first-day serve` exited with {status} after SIGTERM"
            );
            break;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`first-day serve` did not stop within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// README.md shows the template's files verbatim, so what a user copies from it is what this
/// test builds.
#[test]
fn the_readme_shows_the_template() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("reads README.md");
    let template = manifest_dir().join("template");
    for file in [
        "src/main.rs",
        "build.rs",
        "schemas/shapes.wsp",
        "schemas/plot.wsp",
    ] {
        let text = std::fs::read_to_string(template.join(file)).expect("reads a template file");
        assert!(
            readme.contains(&text),
            "README.md does not show tests/new-user/template/{file} verbatim:\n{text}"
        );
    }
    // The dependency lines, with crates.io versions in place of this checkout's paths.
    let manifest =
        std::fs::read_to_string(template.join("Cargo.toml.in")).expect("reads Cargo.toml.in");
    for line in manifest
        .lines()
        .filter(|l| l.starts_with("tokio") || l.starts_with("futures"))
    {
        assert!(
            readme.contains(line),
            "README.md lacks the dependency line `{line}`"
        );
    }
    for dep in ["wsp-runtime = \"0.1\"", "wsp-build = \"0.1\""] {
        assert!(readme.contains(dep), "README.md lacks `{dep}`");
    }
}

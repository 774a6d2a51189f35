//! Runs the example binaries and checks what they print, so the README's demo and the examples
//! keep working.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs a binary to completion within 60 s and returns its stdout.
fn run(exe: &str) -> String {
    let mut child = Command::new(exe)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("example binary starts");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait on example") {
            let out = child.wait_with_output().expect("collect output");
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                status.success(),
                "{exe} failed: {status}\nstdout:\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            return stdout;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{exe} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn demo_shows_every_step() {
    let out = run(env!("CARGO_BIN_EXE_demo"));
    for expected in [
        "math.add([1, 2, 3]) = 6",
        "failed with MathError::DivisionByZero",
        "[ada] the server asks: Do you accept the room rules?",
        "[ada] broadcast: <ada> hello, room",
        "math.count(1, 5) yielded [1, 2, 3, 4, 5]",
        "math.add([40, 2]) = 42 after the client reconnected",
        "reconnects            1",
        "client closed with 1000 \"demo finished\"",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn math_example_adds() {
    assert!(run(env!("CARGO_BIN_EXE_math")).contains("add(1, 2, 3) = 6"));
}

#[test]
fn chat_example_calls_back_into_clients() {
    let out = run(env!("CARGO_BIN_EXE_chat"));
    for expected in [
        "[bob] the server asks: Do you accept the room rules?",
        "bob's stream: <ada> hi bob",
        "[bob] broadcast: <ada> hi bob",
        "eve refused the rules: room full",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn relay_demo_calls_a_host_through_the_relay() {
    let out = run(env!("CARGO_BIN_EXE_relay-demo"));
    for expected in [
        "host registered 2 spare connections under its key",
        "math.add([1, 2, 3]) = 6",
        "math.count(1, 3) yielded [1, 2, 3]",
        "hand-overs 1",
        "caller closed with 1000 \"demo finished\"",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn axum_app_serves_http_and_wsp_on_one_port() {
    let out = run(env!("CARGO_BIN_EXE_axum-app"));
    for expected in [
        "GET /health -> HTTP/1.1 200 OK ok",
        "math.add([1, 2, 3]) over /wsp = 6",
        "GET /metrics: wsp_calls_total{method=\"math.Math/add\",outcome=\"ok\"} 1",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

//! The accept loop when accepting fails (PROTOCOL §8): out of file descriptors, it pauses
//! between attempts instead of spinning, and serves again once descriptors are free.
//!
//! Alone in its test binary: it lowers the process's descriptor limit.

mod common;

use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use rlimit::Resource;
use wsp_runtime::Codec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_accept_loop_pauses_and_recovers() {
    let server = math_server().await;
    let port = server.local_addr().port();
    // A connection from another process (ours will have no descriptor to spare), started now
    // while spawning still has descriptors, connecting a moment later.
    let mut peer = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "sleep 0.3; exec 3<>/dev/tcp/127.0.0.1/{port}; sleep 3"
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bash runs");

    // The lowest free descriptor number becomes the limit: every new descriptor fails.
    let (soft, hard) = Resource::NOFILE.get().unwrap();
    let lowest_free = std::fs::File::open("/dev/null").unwrap().as_raw_fd() as u64;
    Resource::NOFILE.set(lowest_free, hard).unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let errors = server.stats().accept_errors;
    Resource::NOFILE.set(soft, hard).unwrap();

    // About one attempt per 100 ms pause over the second the connection waited.
    assert!(errors >= 1, "the pending connection was tried");
    assert!(
        errors <= 30,
        "the accept loop spun: {errors} failed accepts"
    );

    // With descriptors back, the server accepts and serves.
    let client = client_of(&server, Codec::MsgPack).await;
    let sum = client
        .call_value("math.Math/add", vec![2.into(), 3.into()])
        .await
        .unwrap();
    assert_eq!(sum, wsp_runtime::Value::from(5));
    client.close(1000, "done").await.unwrap();
    let _ = peer.kill();
    let _ = peer.wait();
    server.close().await;
}

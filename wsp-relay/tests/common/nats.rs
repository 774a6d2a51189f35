//! A real NATS server (Debian's `nats-server`, installed by `scripts/test-all`) on a free
//! loopback port, for the relay cluster tests.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `nats-server`, killed when dropped.
pub struct Nats {
    child: Child,
    port: u16,
}

impl Nats {
    /// Starts one on a port the system picks.
    pub async fn start() -> Nats {
        Nats::spawn(None).await
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (its clients see the connection drop).
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Starts it again on the same port (its clients reconnect there).
    pub async fn restart(&mut self) {
        self.kill().await;
        *self = Nats::spawn(Some(self.port)).await;
    }

    async fn spawn(port: Option<u16>) -> Nats {
        let port_arg = port.map_or("-1".to_owned(), |p| p.to_string());
        let mut child = Command::new(binary())
            .args(["-a", "127.0.0.1", "-p", &port_arg])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut found = None;
        // The server logs the port it listens on, then that it is ready.
        let ready = tokio::time::timeout(Duration::from_secs(10), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("Listening for client connections on ").nth(1) {
                    found = rest.rsplit(':').next().and_then(|p| p.trim().parse().ok());
                }
                if line.contains("Server is ready") {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(
            matches!(ready, Ok(true)),
            "nats-server did not become ready"
        );
        // Its later log lines are read and dropped, so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Nats {
            child,
            port: found.expect("nats-server logged its client port"),
        }
    }
}

/// The `nats-server` binary: `$NATS_SERVER`, else on `PATH`, else where Debian puts it.
fn binary() -> String {
    if let Ok(path) = std::env::var("NATS_SERVER") {
        return path;
    }
    let on_path = std::env::var("PATH").unwrap_or_default();
    let dirs = on_path.split(':').chain(["/usr/sbin", "/usr/bin"]);
    for dir in dirs {
        let candidate = std::path::Path::new(dir).join("nats-server");
        if candidate.is_file() {
            return candidate.to_string_lossy().into_owned();
        }
    }
    panic!("nats-server not found: scripts/test-all installs it (apt-get install nats-server)")
}

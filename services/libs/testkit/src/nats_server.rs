//! A private NATS server with JetStream for tests that take the bus down: the same
//! `nats-server` binary as the shared one, on its own port and store folder.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct NatsServer {
    dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl NatsServer {
    pub async fn start() -> NatsServer {
        let dir = std::env::temp_dir().join(format!("weft-nats-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create nats folder");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let mut server = NatsServer {
            dir,
            port,
            child: None,
        };
        server.resume().await;
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn answers(&self) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }

    /// Starts the server (again) on the same port and store.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "nats is already running");
        let binary =
            std::env::var("WEFT_TEST_NATS_SERVER").unwrap_or_else(|_| "nats-server".to_owned());
        let child = Command::new(binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server (install Debian's nats-server)");
        self.child = Some(child);
        crate::eventually(
            "the private nats to answer",
            Duration::from_secs(30),
            || async { self.answers().then_some(()) },
        )
        .await;
    }

    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        crate::eventually(
            "the private nats to stop",
            Duration::from_secs(30),
            || async { (!self.answers()).then_some(()) },
        )
        .await;
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

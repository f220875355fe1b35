//! Private server processes for tests that take a dependency down: the same
//! `nats-server` or `clickhouse-server` binary as the shared one, on its own ports and in
//! its own folder, so stopping it disturbs no other test.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A server process that can be stopped and started again on the same ports and data.
pub struct ChildServer {
    what: &'static str,
    dir: PathBuf,
    program: String,
    args: Vec<OsString>,
    /// Every port the server listens on: ready when all accept, stopped when none does.
    ports: Vec<u16>,
    url: String,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn fresh_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-{what}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("create the server's folder");
    dir
}

impl ChildServer {
    /// NATS with JetStream (`WEFT_TEST_NATS_SERVER` names the binary).
    pub async fn nats() -> ChildServer {
        let dir = fresh_dir("nats");
        let port = free_port();
        let mut args: Vec<OsString> = ["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"]
            .iter()
            .map(OsString::from)
            .collect();
        args.push(dir.clone().into_os_string());
        Self::start(ChildServer {
            what: "nats",
            dir,
            program: std::env::var("WEFT_TEST_NATS_SERVER")
                .unwrap_or_else(|_| "nats-server".to_owned()),
            args,
            ports: vec![port],
            url: format!("nats://127.0.0.1:{port}"),
            child: None,
        })
        .await
    }

    /// ClickHouse with a minimal configuration (`WEFT_TEST_CLICKHOUSE_SERVER` names the
    /// binary).
    pub async fn clickhouse() -> ChildServer {
        let dir = fresh_dir("clickhouse");
        for sub in ["data", "tmp", "log", "user_files"] {
            std::fs::create_dir_all(dir.join(sub)).expect("create clickhouse folders");
        }
        let (http_port, tcp_port) = (free_port(), free_port());
        let d = dir.display();
        std::fs::write(
            dir.join("config.xml"),
            format!(
                "<yandex>\n<logger><level>warning</level><log>{d}/log/server.log</log><errorlog>{d}/log/err.log</errorlog></logger>\n\
                 <http_port>{http_port}</http_port><tcp_port>{tcp_port}</tcp_port><listen_host>127.0.0.1</listen_host>\n\
                 <path>{d}/data/</path><tmp_path>{d}/tmp/</tmp_path><user_files_path>{d}/user_files/</user_files_path>\n\
                 <users_config>{d}/users.xml</users_config><default_profile>default</default_profile>\n\
                 <default_database>default</default_database><mark_cache_size>268435456</mark_cache_size>\n\
                 <uncompressed_cache_size>268435456</uncompressed_cache_size>\n</yandex>\n"
            ),
        )
        .expect("write clickhouse config");
        std::fs::write(
            dir.join("users.xml"),
            "<yandex><profiles><default/></profiles><users><default><password></password>\
             <networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota>\
             </default></users><quotas><default/></quotas></yandex>\n",
        )
        .expect("write clickhouse users");
        let config = format!("--config-file={}", dir.join("config.xml").display());
        Self::start(ChildServer {
            what: "clickhouse",
            dir,
            program: std::env::var("WEFT_TEST_CLICKHOUSE_SERVER")
                .unwrap_or_else(|_| "/usr/sbin/clickhouse-server".to_owned()),
            args: vec![config.into()],
            ports: vec![http_port, tcp_port],
            url: format!("http://127.0.0.1:{http_port}"),
            child: None,
        })
        .await
    }

    async fn start(mut server: ChildServer) -> ChildServer {
        server.resume().await;
        server
    }

    /// Where clients connect: `nats://…` or ClickHouse's `http://…`.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn listening(&self) -> usize {
        self.ports
            .iter()
            .filter(|port| std::net::TcpStream::connect(("127.0.0.1", **port)).is_ok())
            .count()
    }

    /// Starts the server (again) on the same ports and data, and waits until it listens.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.what);
        let child = Command::new(&self.program)
            .args(&self.args)
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "start {} (install Debian's {}-server): {e}",
                    self.program, self.what
                )
            });
        self.child = Some(child);
        let what = format!("the private {} to listen", self.what);
        crate::eventually(&what, Duration::from_secs(60), || async {
            (self.listening() == self.ports.len()).then_some(())
        })
        .await;
    }

    /// Kills the server (as a crash would) and waits until none of its ports answers.
    pub async fn stop(&mut self) {
        self.kill();
        let what = format!("the private {} to stop", self.what);
        crate::eventually(&what, Duration::from_secs(30), || async {
            (self.listening() == 0).then_some(())
        })
        .await;
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

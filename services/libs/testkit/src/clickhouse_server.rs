//! A private ClickHouse server process for tests that stop and start ClickHouse: the
//! same `clickhouse-server` binary as the shared one, on its own ports and data folder,
//! so stopping it disturbs no other test.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct ClickHouseServer {
    dir: PathBuf,
    pub http_port: u16,
    tcp_port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn binary() -> String {
    std::env::var("WEFT_TEST_CLICKHOUSE_SERVER")
        .unwrap_or_else(|_| "/usr/sbin/clickhouse-server".to_owned())
}

impl ClickHouseServer {
    /// Writes a minimal configuration into a fresh folder and starts the server.
    pub async fn start() -> ClickHouseServer {
        let dir =
            std::env::temp_dir().join(format!("weft-clickhouse-{}", uuid::Uuid::new_v4().simple()));
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
        let mut server = ClickHouseServer {
            dir,
            http_port,
            tcp_port,
            child: None,
        };
        server.resume().await;
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    async fn answers(&self) -> bool {
        reqwest::get(format!("{}/?query=SELECT%201", self.url()))
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    /// Starts the server (again) on the same ports and data, and waits until it answers.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "clickhouse is already running");
        let child = Command::new(binary())
            .arg(format!(
                "--config-file={}",
                self.dir.join("config.xml").display()
            ))
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start clickhouse-server (install Debian's clickhouse-server)");
        self.child = Some(child);
        crate::eventually(
            "the private clickhouse to answer",
            Duration::from_secs(60),
            || async { self.answers().await.then_some(()) },
        )
        .await;
    }

    /// Kills the server and waits until its port is closed.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let port = self.tcp_port;
        crate::eventually(
            "the private clickhouse to stop",
            Duration::from_secs(30),
            || async {
                (!self.answers().await
                    && std::net::TcpStream::connect(("127.0.0.1", port)).is_err())
                .then_some(())
            },
        )
        .await;
    }
}

impl Drop for ClickHouseServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

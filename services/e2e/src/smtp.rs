//! A real SMTP server for the suites that send email: Python's aiosmtpd (installed by
//! deploy/test.sh, found by `WEFT_SMTP_PYTHON`), which prints every message it receives,
//! parsed by Python's `email` package, as a JSON line.

use serde_json::Value;
use std::time::Duration;

pub struct SmtpServer {
    pub port: u16,
    _child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

const SMTP_SERVER: &str = r#"
import json, sys
from email import message_from_bytes, policy
from aiosmtpd.controller import Controller

class Handler:
    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        text, html = message.get_body(("plain",)), message.get_body(("html",))
        print(json.dumps({
            "ehlo": session.host_name, "mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
            "subject": str(message["subject"]), "from": str(message["from"]), "to": str(message["to"]),
            "content_type": message.get_content_type(),
            "text": text.get_content() if text else None, "html": html.get_content() if html else None,
        }), flush=True)
        return "250 Message accepted for delivery"

controller = Controller(Handler(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print(json.dumps({"ready": True}), flush=True)
sys.stdin.read()
controller.stop()
"#;

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        use tokio::io::AsyncBufReadExt;
        let python = std::env::var("WEFT_SMTP_PYTHON").unwrap_or_else(|_| {
            format!(
                "{}/.cache/weft/smtp-venv/bin/python",
                std::env::var("HOME").unwrap()
            )
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = tokio::process::Command::new(&python)
            .args(["-c", SMTP_SERVER, &port.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{python} (aiosmtpd; deploy/test.sh installs it): {e}"));
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await;
        assert!(
            matches!(ready, Ok(Ok(Some(ref l))) if l.contains("ready")),
            "aiosmtpd started: {ready:?}"
        );
        SmtpServer {
            port,
            _child: child,
            lines,
        }
    }

    /// The next message received, within the deadline.
    pub async fn next_message(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
            .await
            .expect("an email within 30 s")
            .unwrap()
            .expect("the SMTP server is running");
        serde_json::from_str(&line).unwrap()
    }
}

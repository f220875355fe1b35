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
import json, ssl, sys
from email import message_from_bytes, policy
from aiosmtpd.controller import Controller

class Handler:
    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        text, html = message.get_body(("plain",)), message.get_body(("html",))
        print(json.dumps({
            "ehlo": session.host_name, "tls": bool(session.ssl), "mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
            "subject": str(message["subject"]), "from": str(message["from"]), "to": str(message["to"]),
            "content_type": message.get_content_type(),
            "text": text.get_content() if text else None, "html": html.get_content() if html else None,
        }), flush=True)
        return "250 Message accepted for delivery"

# With a certificate and key: STARTTLS offered, and required before MAIL.
tls = {}
if len(sys.argv) > 3:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(sys.argv[2], sys.argv[3])
    tls = {"tls_context": context, "require_starttls": True}
controller = Controller(Handler(), hostname="127.0.0.1", port=int(sys.argv[1]), **tls)
controller.start()
print(json.dumps({"ready": True}), flush=True)
sys.stdin.read()
controller.stop()
"#;

impl SmtpServer {
    /// A server that offers no STARTTLS.
    pub async fn start() -> SmtpServer {
        SmtpServer::start_with(&[]).await
    }

    /// A server that offers STARTTLS, and requires it, with a certificate for 127.0.0.1
    /// issued by a CA made with openssl in `dir`; returns the CA's PEM path.
    pub async fn start_tls(dir: &std::path::Path) -> (SmtpServer, std::path::PathBuf) {
        let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
        let san = path("san.ext");
        std::fs::write(&san, "subjectAltName=IP:127.0.0.1\n").unwrap();
        let (ca, ca_key, cert, key, csr) = (
            path("ca.pem"),
            path("ca-key.pem"),
            path("smtp-cert.pem"),
            path("smtp-key.pem"),
            path("smtp.csr"),
        );
        let days = ["-days", "1"];
        for args in [
            vec![
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=weft test CA",
                "-keyout",
                &ca_key,
                "-out",
                &ca,
            ],
            vec![
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                &key,
                "-out",
                &csr,
            ],
            vec![
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-extfile",
                &san,
                "-out",
                &cert,
            ],
        ] {
            let made = tokio::process::Command::new("openssl")
                .args(&args)
                .args(days)
                .output()
                .await
                .expect("openssl (Debian's openssl package)");
            assert!(
                made.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&made.stderr)
            );
        }
        let server = SmtpServer::start_with(&[&cert, &key]).await;
        (server, ca.into())
    }

    async fn start_with(tls: &[&str]) -> SmtpServer {
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
            .args(tls)
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

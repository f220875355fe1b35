//! Email through the operator's SMTP server, with lettre: the `WEFT_SMTP_*` settings
//! ([`SmtpConfig`]) and a [`Mailer`] that sends multipart (plain text and HTML) messages.
//! Alerting's email channel and the dashboard's password reset links both send through
//! it, so one SMTP set-up serves both.

use anyhow::Context;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;
use weft_runtime::config::{ConfigError, Env};

/// How a TLS connection to the SMTP server is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS when the server offers it, plain otherwise (the default).
    Opportunistic,
    /// STARTTLS or refuse to send.
    Required,
    /// TLS from the first byte (port 465).
    Wrapper,
    /// Never (a local relay).
    None,
}

/// The operator's SMTP server. `host` empty: email is off, and each service says so
/// where one was expected.
#[derive(Clone, Debug)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
    pub from: String,
    pub tls: SmtpTls,
    /// PEM certificates trusted for the SMTP server besides the system's roots
    /// (`WEFT_SMTP_CA_FILE`): an internal relay with a private CA or a self-signed one.
    pub ca_file: Option<std::path::PathBuf>,
    pub timeout: Duration,
}

impl SmtpConfig {
    /// Reads `WEFT_SMTP_HOST` (empty: email off), `WEFT_SMTP_PORT` (587),
    /// `WEFT_SMTP_USERNAME`, `WEFT_SMTP_PASSWORD`, `WEFT_SMTP_FROM`
    /// (`weft@localhost.localdomain`), `WEFT_SMTP_TLS` (`opportunistic`, `required`,
    /// `wrapper` or `none`), `WEFT_SMTP_CA_FILE` (extra trusted certificates, PEM) and
    /// `WEFT_SMTP_TIMEOUT` (`10s`).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let tls_text = env.string("WEFT_SMTP_TLS", "opportunistic");
        let tls = match tls_text.as_str() {
            "opportunistic" => SmtpTls::Opportunistic,
            "required" => SmtpTls::Required,
            "wrapper" => SmtpTls::Wrapper,
            "none" => SmtpTls::None,
            _ => {
                return Err(ConfigError {
                    name: "WEFT_SMTP_TLS".to_owned(),
                    value: tls_text,
                    reason: "must be opportunistic, required, wrapper or none".to_owned(),
                });
            }
        };
        let config = SmtpConfig {
            host: env.string("WEFT_SMTP_HOST", ""),
            port: env.get("WEFT_SMTP_PORT", 587)?,
            username: env.string("WEFT_SMTP_USERNAME", ""),
            password: env.string("WEFT_SMTP_PASSWORD", ""),
            from: env.string("WEFT_SMTP_FROM", "weft@localhost.localdomain"),
            tls,
            ca_file: Some(env.string("WEFT_SMTP_CA_FILE", ""))
                .filter(|path| !path.is_empty())
                .map(std::path::PathBuf::from),
            timeout: env.duration("WEFT_SMTP_TIMEOUT", Duration::from_secs(10))?,
        };
        env.check(
            "WEFT_SMTP_FROM",
            config.from.parse::<Mailbox>().is_ok(),
            "must be an email address",
        )?;
        Ok(config)
    }
}

/// Sends email, or knows that it cannot.
pub struct Mailer {
    smtp: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
}

/// One email: recipients, a subject and the same text as plain text and HTML.
pub struct Email {
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Mailer {
    pub fn new(config: &SmtpConfig) -> anyhow::Result<Mailer> {
        if config.host.is_empty() {
            return Ok(Mailer { smtp: None });
        }
        let extra_root = match &config.ca_file {
            Some(path) => {
                let pem = std::fs::read(path).with_context(|| {
                    format!("failed to read WEFT_SMTP_CA_FILE {}", path.display())
                })?;
                Some(Certificate::from_pem(&pem).with_context(|| {
                    format!(
                        "WEFT_SMTP_CA_FILE {} holds no PEM certificate",
                        path.display()
                    )
                })?)
            }
            None => None,
        };
        let tls = || {
            let mut parameters = TlsParameters::builder(config.host.clone());
            if let Some(root) = &extra_root {
                parameters = parameters.add_root_certificate(root.clone());
            }
            parameters.build().context("failed to set up TLS for SMTP")
        };
        let tls = match config.tls {
            SmtpTls::Opportunistic => Tls::Opportunistic(tls()?),
            SmtpTls::Required => Tls::Required(tls()?),
            SmtpTls::Wrapper => Tls::Wrapper(tls()?),
            SmtpTls::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(config.timeout));
        if !config.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                config.username.clone(),
                config.password.clone(),
            ));
        }
        let from = config.from.parse().context("invalid WEFT_SMTP_FROM")?;
        Ok(Mailer {
            smtp: Some((builder.build(), from)),
        })
    }

    /// Whether email is configured at all.
    pub fn enabled(&self) -> bool {
        self.smtp.is_some()
    }

    pub async fn send(&self, email: Email) -> anyhow::Result<()> {
        let Some((transport, from)) = &self.smtp else {
            anyhow::bail!("email is not configured on this Weft (WEFT_SMTP_HOST)");
        };
        let mut message = Message::builder().from(from.clone());
        for address in &email.to {
            message = message.to(address
                .parse()
                .with_context(|| format!("invalid address {address:?}"))?);
        }
        let message = message
            .subject(email.subject)
            .multipart(MultiPart::alternative_plain_html(email.text, email.html))
            .context("failed to build the email")?;
        transport
            .send(message)
            .await
            .context("SMTP delivery failed")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_settings_are_read_like_alerting_reads_them() {
        let config = SmtpConfig::from_env(&Env::default()).unwrap();
        assert!(config.host.is_empty());
        assert!(!Mailer::new(&config).unwrap().enabled());
        let env = Env::from_pairs([
            ("WEFT_SMTP_HOST", "127.0.0.1"),
            ("WEFT_SMTP_PORT", "2525"),
            ("WEFT_SMTP_TLS", "none"),
        ]);
        let config = SmtpConfig::from_env(&env).unwrap();
        assert_eq!((config.port, config.tls), (2525, SmtpTls::None));
        assert!(Mailer::new(&config).unwrap().enabled());
        for (name, bad) in [
            ("WEFT_SMTP_TLS", "maybe"),
            ("WEFT_SMTP_FROM", "not an address"),
        ] {
            let error = SmtpConfig::from_env(&Env::from_pairs([(name, bad)]))
                .unwrap_err()
                .to_string();
            assert!(error.contains(name), "{error}");
        }
    }
}

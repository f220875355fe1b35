//! Query configuration from `WEFT_*` variables.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;
use weft_bus::BusConfig;
use weft_mail::SmtpConfig;
use weft_runtime::config::{ConfigError, Env};
use weft_storage::clickhouse::ClickHouseConfig;
use weft_storage::postgres::PostgresConfig;

#[derive(Clone, Debug)]
pub struct QueryConfig {
    pub http_addr: SocketAddr,
    pub clickhouse: ClickHouseConfig,
    pub postgres: PostgresConfig,
    pub key_cache_ttl: Duration,
    /// Where key revocations are announced.
    pub bus: BusConfig,
    /// Signs session tokens and CSRF tokens; random per process when unset.
    pub session_secret: Option<String>,
    pub session_ttl: Duration,
    /// Marks cookies `Secure`; on whenever the dashboard is served over HTTPS.
    pub secure_cookies: bool,
    /// The ingest endpoints shown to users on the set-up page.
    pub public_ingest_http_url: String,
    pub public_ingest_grpc_url: String,
    /// Where users reach the dashboard (`http://host[:port]` or `https://…`, no path):
    /// absolute links such as invitations are built from it, never from request headers.
    pub public_url: String,
    pub login: LoginLimits,
    /// The SMTP server password reset links are sent through (the alerting service's).
    pub smtp: SmtpConfig,
    /// How long a password reset link works.
    pub password_reset_ttl: Duration,
    /// Reset links one account may be sent per hour.
    pub password_resets_per_hour: u32,
    /// How often deleted organisations' ClickHouse rows are swept again, and for how long
    /// after the deletion (spans the bus held when it happened may be stored late).
    pub erasure_sweep_interval: Duration,
    pub erasure_window: Duration,
    /// Whether channel URLs may point at internal addresses
    /// (`WEFT_ALERTING_ALLOW_PRIVATE_TARGETS`; the alerting service checks again when
    /// it delivers).
    pub alerting_targets: weft_model::alerting::TargetPolicy,
}

/// What bounds password checks: argon2 work at once, and attempts per client address.
#[derive(Clone, Debug)]
pub struct LoginLimits {
    /// Argon2 hashes computed at once; each holds 19 MiB while it runs.
    pub hashing_concurrency: usize,
    /// Requests that may wait for a hashing slot; past them the answer is 429.
    pub hashing_queue: usize,
    /// Password attempts (login, sign-up, accepting an invitation) one client address
    /// may make at once before it must wait for `address_refill`, per attempt.
    pub attempts_per_address: u32,
    pub address_refill: Duration,
    /// Peers whose `X-Forwarded-For` names the client (load balancers, reverse proxies).
    pub trusted_proxies: TrustedProxies,
}

/// Addresses and networks (`10.0.0.0/8`, `::1`) of the proxies in front of the dashboard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    pub fn contains(&self, address: IpAddr) -> bool {
        self.0
            .iter()
            .any(|&(network, bits)| same_prefix(network, address.to_canonical(), bits))
    }
}

/// Whether `a` and `b` are of one family and agree on their first `bits` bits.
fn same_prefix(a: IpAddr, b: IpAddr, bits: u8) -> bool {
    let (a, b, width) = match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a).into(), u32::from(b).into(), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    shift >= 128 || (a >> shift) == (b >> shift)
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// A comma-separated list of addresses and networks.
    fn from_str(text: &str) -> Result<Self, String> {
        let entries = text.split(',').map(str::trim).filter(|e| !e.is_empty());
        entries
            .map(|entry| {
                let (address, bits) = entry.split_once('/').unwrap_or((entry, ""));
                let address: IpAddr = address
                    .parse()
                    .map_err(|_| format!("{entry:?} is not an IP address or network"))?;
                let width = if address.is_ipv4() { 32 } else { 128 };
                let bits = if bits.is_empty() {
                    width
                } else {
                    bits.parse::<u8>()
                        .ok()
                        .filter(|&b| b <= width)
                        .ok_or_else(|| format!("{entry:?} has no prefix length up to {width}"))?
                };
                Ok((address.to_canonical(), bits))
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }
}

/// Why a public URL is not usable, or `None` when it is an `http` or `https` origin:
/// a scheme, a host and an optional port, with nothing after it but one optional `/`.
fn public_url_problem(url: &str) -> Option<&'static str> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Some("must start with http:// or https://");
    };
    if scheme != "http" && scheme != "https" {
        return Some("must start with http:// or https://");
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#']) {
        return Some(
            "must be an origin such as https://weft.example.com, without path, query or fragment",
        );
    }
    if authority.contains('@') {
        return Some("must not carry a user name or password");
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host.split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
        }
    };
    if !host_ok {
        return Some("must name a host");
    }
    if port.is_some_and(|p| p.parse::<u16>().map_or(true, |p| p == 0)) {
        return Some("has a port that is not a number from 1 to 65535");
    }
    None
}

impl QueryConfig {
    /// Reads `WEFT_QUERY_HTTP_ADDR` (default `0.0.0.0:8080`), `WEFT_KEY_CACHE_TTL` (`5s`),
    /// `WEFT_SESSION_SECRET` (random per process), `WEFT_SESSION_TTL` (`12h`),
    /// `WEFT_SECURE_COOKIES` (`false`), `WEFT_PUBLIC_INGEST_HTTP_URL` and
    /// `WEFT_PUBLIC_INGEST_GRPC_URL`, `WEFT_PUBLIC_URL` (`http://127.0.0.1:8080`),
    /// `WEFT_PASSWORD_HASHING_CONCURRENCY` (the number of cores),
    /// `WEFT_PASSWORD_HASHING_QUEUE` (twice that), `WEFT_PASSWORD_ATTEMPTS_PER_ADDRESS`
    /// (`30`), `WEFT_PASSWORD_ATTEMPT_INTERVAL` (`10s`), `WEFT_TRUSTED_PROXIES` (none),
    /// `WEFT_PASSWORD_RESET_TTL` (`1h`), `WEFT_PASSWORD_RESETS_PER_HOUR` (`3`),
    /// `WEFT_ERASURE_SWEEP_INTERVAL` (`1m`), `WEFT_ERASURE_WINDOW` (`1h`), the SMTP
    /// variables (see [`SmtpConfig::from_env`]), and the ClickHouse, database and bus
    /// variables.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let hashing_concurrency = env.get("WEFT_PASSWORD_HASHING_CONCURRENCY", cores)?;
        let public_url = env.string("WEFT_PUBLIC_URL", "http://127.0.0.1:8080");
        let url_problem = public_url_problem(&public_url);
        env.check(
            "WEFT_PUBLIC_URL",
            url_problem.is_none(),
            url_problem.unwrap_or_default(),
        )?;
        let config = QueryConfig {
            http_addr: env.get(
                "WEFT_QUERY_HTTP_ADDR",
                SocketAddr::from(([0, 0, 0, 0], 8080)),
            )?,
            clickhouse: ClickHouseConfig::from_env(env)?,
            postgres: PostgresConfig::from_env(env)?,
            key_cache_ttl: env.duration("WEFT_KEY_CACHE_TTL", Duration::from_secs(5))?,
            bus: BusConfig::from_env(env)?,
            session_secret: env.raw("WEFT_SESSION_SECRET").map(str::to_owned),
            session_ttl: env.duration("WEFT_SESSION_TTL", Duration::from_secs(12 * 3600))?,
            secure_cookies: env.get("WEFT_SECURE_COOKIES", false)?,
            public_ingest_http_url: env
                .string("WEFT_PUBLIC_INGEST_HTTP_URL", "http://127.0.0.1:4318"),
            public_ingest_grpc_url: env
                .string("WEFT_PUBLIC_INGEST_GRPC_URL", "http://127.0.0.1:4317"),
            public_url: public_url
                .strip_suffix('/')
                .unwrap_or(&public_url)
                .to_owned(),
            alerting_targets: weft_model::alerting::TargetPolicy::from_allow_private(
                env.get("WEFT_ALERTING_ALLOW_PRIVATE_TARGETS", false)?,
            ),
            login: LoginLimits {
                hashing_concurrency,
                hashing_queue: env.get("WEFT_PASSWORD_HASHING_QUEUE", 2 * hashing_concurrency)?,
                attempts_per_address: env.get("WEFT_PASSWORD_ATTEMPTS_PER_ADDRESS", 30)?,
                address_refill: env
                    .duration("WEFT_PASSWORD_ATTEMPT_INTERVAL", Duration::from_secs(10))?,
                trusted_proxies: env.get("WEFT_TRUSTED_PROXIES", TrustedProxies::default())?,
            },
            smtp: SmtpConfig::from_env(env)?,
            password_reset_ttl: env
                .duration("WEFT_PASSWORD_RESET_TTL", Duration::from_secs(3600))?,
            password_resets_per_hour: env.get("WEFT_PASSWORD_RESETS_PER_HOUR", 3)?,
            erasure_sweep_interval: env
                .duration("WEFT_ERASURE_SWEEP_INTERVAL", Duration::from_secs(60))?,
            erasure_window: env.duration("WEFT_ERASURE_WINDOW", Duration::from_secs(3600))?,
        };
        env.check(
            "WEFT_SESSION_SECRET",
            config.session_secret.as_ref().is_none_or(|s| s.len() >= 32),
            "must be at least 32 characters",
        )?;
        env.check(
            "WEFT_PASSWORD_HASHING_CONCURRENCY",
            config.login.hashing_concurrency > 0,
            "must be at least 1",
        )?;
        env.check(
            "WEFT_PASSWORD_ATTEMPTS_PER_ADDRESS",
            config.login.attempts_per_address > 0,
            "must be at least 1",
        )?;
        env.check(
            "WEFT_PASSWORD_RESET_TTL",
            config.password_reset_ttl >= Duration::from_secs(1)
                && config.password_reset_ttl <= Duration::from_secs(24 * 3600),
            "must be between 1s and 24h",
        )?;
        env.check(
            "WEFT_PASSWORD_RESETS_PER_HOUR",
            config.password_resets_per_hour > 0,
            "must be at least 1",
        )?;
        env.check(
            "WEFT_ERASURE_SWEEP_INTERVAL",
            config.erasure_sweep_interval >= Duration::from_millis(100),
            "must be at least 100ms",
        )?;
        env.check(
            "WEFT_PASSWORD_ATTEMPT_INTERVAL",
            !config.login.address_refill.is_zero(),
            "must be longer than zero",
        )?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<QueryConfig, String> {
        QueryConfig::from_env(&Env::from_pairs(pairs.iter().copied())).map_err(|e| e.to_string())
    }

    #[test]
    fn the_public_url_is_an_origin() {
        assert_eq!(config(&[]).unwrap().public_url, "http://127.0.0.1:8080");
        for (given, kept) in [
            ("https://weft.example.com/", "https://weft.example.com"),
            ("http://[::1]:8080", "http://[::1]:8080"),
            (
                "https://weft-eu.example.com:8443",
                "https://weft-eu.example.com:8443",
            ),
        ] {
            let config = config(&[("WEFT_PUBLIC_URL", given)]).unwrap();
            assert_eq!(config.public_url, kept, "{given}");
        }
        for bad in [
            "weft.example.com",
            "ftp://weft.example.com",
            "https://",
            "https://weft.example.com/dashboard",
            "https://weft.example.com?x=1",
            "https://weft.example.com#top",
            "https://weft.example.com//",
            "https://user:secret@weft.example.com",
            "https://weft.example.com:0",
            "https://weft.example.com:99999",
            "https://weft..example.com",
            "https://[zz::1]",
            "https://<script>",
        ] {
            let error = config(&[("WEFT_PUBLIC_URL", bad)]).unwrap_err();
            assert!(error.contains("WEFT_PUBLIC_URL"), "{bad}: {error}");
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_and_networks() {
        let proxies: TrustedProxies = "10.0.0.0/8, 192.168.1.7,fd00::/8".parse().unwrap();
        for trusted in ["10.1.2.3", "192.168.1.7", "fd12::1", "::ffff:10.9.9.9"] {
            assert!(proxies.contains(trusted.parse().unwrap()), "{trusted}");
        }
        for outside in ["11.0.0.1", "192.168.1.8", "fe80::1"] {
            assert!(!proxies.contains(outside.parse().unwrap()), "{outside}");
        }
        assert!(!TrustedProxies::default().contains("127.0.0.1".parse().unwrap()));
        let all: TrustedProxies = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        for bad in ["proxy.local", "10.0.0.0/33", "::/129", "10.0.0.0/x"] {
            let error = config(&[("WEFT_TRUSTED_PROXIES", bad)]).unwrap_err();
            assert!(error.contains("WEFT_TRUSTED_PROXIES"), "{bad}: {error}");
        }
    }

    #[test]
    fn login_limits_refuse_zero() {
        for name in [
            "WEFT_PASSWORD_HASHING_CONCURRENCY",
            "WEFT_PASSWORD_ATTEMPTS_PER_ADDRESS",
        ] {
            assert!(config(&[(name, "0")]).unwrap_err().contains(name));
        }
        assert!(config(&[("WEFT_PASSWORD_ATTEMPT_INTERVAL", "0s")]).is_err());
        assert!(config(&[("WEFT_PASSWORD_RESET_TTL", "0s")]).is_err());
        assert!(config(&[("WEFT_PASSWORD_RESET_TTL", "25h")]).is_err());
        assert!(config(&[("WEFT_PASSWORD_RESETS_PER_HOUR", "0")]).is_err());
        assert_eq!(
            config(&[]).unwrap().password_reset_ttl,
            Duration::from_secs(3600)
        );
        let limits = config(&[("WEFT_PASSWORD_HASHING_CONCURRENCY", "3")])
            .unwrap()
            .login;
        assert_eq!((limits.hashing_concurrency, limits.hashing_queue), (3, 6));
    }
}

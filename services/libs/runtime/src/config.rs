//! Reading `WEFT_*` environment variables into typed values. A service's config struct is
//! built from these helpers so that every invalid value is reported with its variable
//! name before any port is bound.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

/// A variable that is set but cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid value {value:?} for {name}: {reason}")]
pub struct ConfigError {
    pub name: String,
    pub value: String,
    pub reason: String,
}

/// A source of variables: the process environment in production, a map in tests.
#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// Every `WEFT_*` variable of this process.
    pub fn from_process() -> Self {
        Env {
            vars: std::env::vars()
                .filter(|(k, _)| k.starts_with("WEFT_"))
                .collect(),
        }
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    pub fn raw(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A parsed value, or `default` when the variable is unset or empty.
    pub fn get<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.raw(name) {
            None => Ok(default),
            Some(value) => value.parse().map_err(|e: T::Err| ConfigError {
                name: name.to_owned(),
                value: value.to_owned(),
                reason: e.to_string(),
            }),
        }
    }

    pub fn string(&self, name: &str, default: &str) -> String {
        self.raw(name).unwrap_or(default).to_owned()
    }

    /// A duration such as `250ms`, `5s`, `2m` or `1h`.
    pub fn duration(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.raw(name) {
            None => Ok(default),
            Some(value) => parse_duration(value).map_err(|reason| ConfigError {
                name: name.to_owned(),
                value: value.to_owned(),
                reason,
            }),
        }
    }

    /// A byte size such as `512KiB`, `4MiB` or a plain number of bytes.
    pub fn bytes(&self, name: &str, default: usize) -> Result<usize, ConfigError> {
        match self.raw(name) {
            None => Ok(default),
            Some(value) => parse_bytes(value).map_err(|reason| ConfigError {
                name: name.to_owned(),
                value: value.to_owned(),
                reason,
            }),
        }
    }

    /// Rejects a value that parsed but is outside what the service can work with.
    pub fn check(&self, name: &str, ok: bool, reason: &str) -> Result<(), ConfigError> {
        if ok {
            return Ok(());
        }
        Err(ConfigError {
            name: name.to_owned(),
            value: self.raw(name).unwrap_or("<default>").to_owned(),
            reason: reason.to_owned(),
        })
    }
}

/// Parses `1.5s`, `250ms`, `100us`, `20ns`, `2m`, `1h`, `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("missing unit in {text:?} (use ns, us, ms, s, m, h or d)"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a number"))?;
    let nanos_per_unit = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        "d" => 86400e9,
        other => {
            return Err(format!(
                "unknown unit {other:?} (use ns, us, ms, s, m, h or d)"
            ));
        }
    };
    let nanos = number * nanos_per_unit;
    if !nanos.is_finite() || nanos < 0.0 || nanos > u64::MAX as f64 {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// Parses `4MiB`, `512KiB`, `1GiB`, `10MB`, `1000`.
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a whole number"))?;
    let multiplier = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => return Err(format!("unknown unit {other:?} (use B, KiB, MiB or GiB)")),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{text:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse_with_units() {
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert_eq!(parse_bytes("4MiB").unwrap(), 4 << 20);
        assert_eq!(parse_bytes("1000").unwrap(), 1000);
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let env = Env::from_pairs([("WEFT_PARTITIONS", "many")]);
        let err = env.get::<u16>("WEFT_PARTITIONS", 16).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"many\" for WEFT_PARTITIONS: invalid digit found in string"
        );
        assert_eq!(env.get::<u16>("WEFT_UNSET", 16).unwrap(), 16);
    }
}

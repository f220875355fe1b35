//! The command line of `weft-admin`: its subcommands, their flags and the checks on them.
//!
//! A rejected command line is a clap error, so it prints what is wrong and exits with
//! status 2 before any configuration is read or any database is touched.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use std::num::{NonZeroU32, NonZeroU64};
use std::path::PathBuf;
use weft_model::KeyScope;

const CONFIGURATION: &str = "Configuration comes from WEFT_DATABASE_URL, WEFT_CLICKHOUSE_*, \
WEFT_NATS_URL and WEFT_BUS_PREFIX (see docs/operations.md).";

/// The operator's command line of Weft: applies migrations, manages tenants and API keys,
/// and creates the demo account of the local stack.
#[derive(Debug, Parser)]
#[command(name = "weft-admin", version, after_help = CONFIGURATION)]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, PartialEq, Eq, Subcommand)]
pub(crate) enum Command {
    /// Apply the PostgreSQL and ClickHouse migrations
    ///
    /// Creates the PostgreSQL database when it is missing. Safe to run again: applied
    /// migrations are skipped, and ClickHouse statements that need a newer server are
    /// deferred.
    Migrate,
    /// Create the demo tenant, a key of each scope and an owner who can log in
    ///
    /// Keys, email and password are written to the keys file (readable by its owner only)
    /// and printed. A second run reuses them while they still work.
    Demo(DemoArgs),
    /// Create tenants and set their ingest limits
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Create, list and revoke a tenant's API keys
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Debug, PartialEq, Eq, Args)]
pub(crate) struct DemoArgs {
    /// Where the demo keys and login are kept, as NAME=VALUE lines
    #[arg(long, value_name = "PATH", default_value = ".weft/demo.env")]
    pub(crate) keys_file: PathBuf,
}

#[derive(Debug, PartialEq, Eq, Subcommand)]
pub(crate) enum TenantCommand {
    /// Create a tenant (an organisation)
    Create(TenantCreateArgs),
    /// Set a tenant's own ingest limit, or reset it to the ingest default
    Limit(TenantLimitArgs),
    /// Set a tenant's own log limits (records, bytes), or reset them to the ingest default
    ///
    /// Give either limit or both; the one not given is left as it is.
    LogLimit(TenantLogLimitArgs),
}

#[derive(Debug, PartialEq, Eq, Args)]
#[command(group(
    clap::ArgGroup::new("log_limits")
        .args(["logs_per_second", "bytes_per_second"])
        .required(true)
        .multiple(true)
))]
pub(crate) struct TenantLogLimitArgs {
    /// Slug of the tenant
    #[arg(long, value_name = "SLUG")]
    pub(crate) tenant: String,
    /// Log records per second per ingest replica, or `default` for the ingest-wide limit
    /// (WEFT_TENANT_LOGS_PER_SECOND)
    #[arg(
        long,
        value_name = "N|default",
        allow_negative_numbers = true,
        value_parser = parse_spans_per_second
    )]
    pub(crate) logs_per_second: Option<SpansPerSecond>,
    /// Log bytes per second per ingest replica, uncompressed (for example 10MiB or
    /// 1048576), or `default` for the ingest-wide limit (WEFT_TENANT_LOG_BYTES_PER_SECOND)
    #[arg(
        long,
        value_name = "SIZE|default",
        allow_negative_numbers = true,
        value_parser = parse_bytes_per_second
    )]
    pub(crate) bytes_per_second: Option<BytesPerSecond>,
}

#[derive(Debug, PartialEq, Eq, Args)]
pub(crate) struct TenantCreateArgs {
    /// Display name, for example "Acme"
    #[arg(long)]
    pub(crate) name: String,
    /// Short unique name the other commands refer to the tenant by, for example acme
    #[arg(long)]
    pub(crate) slug: String,
}

#[derive(Debug, PartialEq, Eq, Args)]
pub(crate) struct TenantLimitArgs {
    /// Slug of the tenant
    #[arg(long, value_name = "SLUG")]
    pub(crate) tenant: String,
    /// Spans per second per ingest replica, or `default` for the ingest-wide limit
    /// (WEFT_TENANT_SPANS_PER_SECOND)
    #[arg(
        long,
        value_name = "N|default",
        allow_negative_numbers = true,
        value_parser = parse_spans_per_second
    )]
    pub(crate) spans_per_second: SpansPerSecond,
}

/// A tenant's ingest limit (of spans, or of log records) as given on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SpansPerSecond {
    /// The tenant falls back to the limit ingest is configured with.
    Default,
    Limit(NonZeroU32),
}

impl SpansPerSecond {
    /// The tenant's own limit as stored: `None` means the ingest default.
    pub(crate) fn own_limit(self) -> Option<u32> {
        match self {
            SpansPerSecond::Default => None,
            SpansPerSecond::Limit(n) => Some(n.get()),
        }
    }
}

fn parse_spans_per_second(value: &str) -> Result<SpansPerSecond, String> {
    if value == "default" {
        return Ok(SpansPerSecond::Default);
    }
    value
        .parse()
        .map(SpansPerSecond::Limit)
        .map_err(|_| "must be a positive number or default".to_owned())
}

/// A tenant's log-bytes limit as given on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BytesPerSecond {
    /// The tenant falls back to the limit ingest is configured with.
    Default,
    Limit(NonZeroU64),
}

impl BytesPerSecond {
    /// The tenant's own limit as stored: `None` means the ingest default.
    pub(crate) fn own_limit(self) -> Option<u64> {
        match self {
            BytesPerSecond::Default => None,
            BytesPerSecond::Limit(n) => Some(n.get()),
        }
    }
}

fn parse_bytes_per_second(value: &str) -> Result<BytesPerSecond, String> {
    if value == "default" {
        return Ok(BytesPerSecond::Default);
    }
    let invalid = || "must be a positive size (such as 10MiB or 1048576) or default".to_owned();
    let bytes = weft_runtime::config::parse_bytes(value).map_err(|_| invalid())?;
    // Stored as a PostgreSQL bigint.
    i64::try_from(bytes)
        .ok()
        .and_then(|b| NonZeroU64::new(b as u64))
        .map(BytesPerSecond::Limit)
        .ok_or_else(invalid)
}

#[derive(Debug, PartialEq, Eq, Subcommand)]
pub(crate) enum KeyCommand {
    /// Create an API key; its secret is printed once and cannot be shown again
    Create(KeyCreateArgs),
    /// List a tenant's keys with their scope, prefix and when they were last used
    List(KeyListArgs),
    /// Revoke a key and announce it over NATS, so every ingest replica drops it at once
    ///
    /// Without NATS the key is still revoked, and replicas drop it within
    /// WEFT_KEY_CACHE_TTL.
    Revoke(KeyRevokeArgs),
}

#[derive(Debug, PartialEq, Eq, Args)]
pub(crate) struct KeyCreateArgs {
    /// Slug of the tenant
    #[arg(long, value_name = "SLUG")]
    pub(crate) tenant: String,
    /// What the key may be used for: sending telemetry, reading traces, or changing
    /// configuration through the API (and reading)
    #[arg(
        long,
        value_parser = PossibleValuesParser::new(["ingest", "read", "write"])
            .try_map(|scope| scope.parse::<KeyScope>())
    )]
    pub(crate) scope: KeyScope,
    /// Label shown in key lists, for example "prod collectors"
    #[arg(long)]
    pub(crate) name: String,
}

#[derive(Debug, PartialEq, Eq, Args)]
pub(crate) struct KeyListArgs {
    /// Slug of the tenant
    #[arg(long, value_name = "SLUG")]
    pub(crate) tenant: String,
}

#[derive(Debug, PartialEq, Eq, Args)]
pub(crate) struct KeyRevokeArgs {
    /// Slug of the tenant
    #[arg(long, value_name = "SLUG")]
    pub(crate) tenant: String,
    /// Id of the key, as `weft-admin key list` shows it
    #[arg(long, value_name = "KEY_ID", value_parser = parse_key_id)]
    pub(crate) id: uuid::Uuid,
}

fn parse_key_id(value: &str) -> Result<uuid::Uuid, String> {
    value
        .parse()
        .map_err(|_| "must be a key id (a uuid)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("weft-admin").chain(args.iter().copied()))
            .map(|cli| cli.command)
    }

    fn error_kind(args: &[&str]) -> ErrorKind {
        parse(args)
            .expect_err("the command line is rejected")
            .kind()
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn migrate_takes_no_flags() {
        assert_eq!(parse(&["migrate"]).unwrap(), Command::Migrate);
        assert_eq!(
            error_kind(&["migrate", "--force"]),
            ErrorKind::UnknownArgument
        );
    }

    #[test]
    fn demo_keeps_its_keys_in_the_local_state_by_default() {
        assert_eq!(
            parse(&["demo"]).unwrap(),
            Command::Demo(DemoArgs {
                keys_file: ".weft/demo.env".into()
            })
        );
    }

    #[test]
    fn demo_as_deploy_up_runs_it() {
        assert_eq!(
            parse(&["demo", "--keys-file", "/srv/weft/.weft/demo.env"]).unwrap(),
            Command::Demo(DemoArgs {
                keys_file: "/srv/weft/.weft/demo.env".into()
            })
        );
        assert_eq!(
            parse(&["demo", "--keys-file=state/demo.env"]).unwrap(),
            Command::Demo(DemoArgs {
                keys_file: "state/demo.env".into()
            })
        );
    }

    #[test]
    fn tenant_create() {
        assert_eq!(
            parse(&["tenant", "create", "--name", "Acme", "--slug", "acme"]).unwrap(),
            Command::Tenant(TenantCommand::Create(TenantCreateArgs {
                name: "Acme".into(),
                slug: "acme".into(),
            }))
        );
        // Flags may come in any order.
        assert_eq!(
            parse(&["tenant", "create", "--slug", "acme", "--name", "Acme Inc"]).unwrap(),
            Command::Tenant(TenantCommand::Create(TenantCreateArgs {
                name: "Acme Inc".into(),
                slug: "acme".into(),
            }))
        );
    }

    #[test]
    fn tenant_limit_takes_a_positive_number_or_default() {
        let limit = |value: &str| {
            parse(&[
                "tenant",
                "limit",
                "--tenant",
                "acme",
                "--spans-per-second",
                value,
            ])
        };
        assert_eq!(
            limit("5000").unwrap(),
            Command::Tenant(TenantCommand::Limit(TenantLimitArgs {
                tenant: "acme".into(),
                spans_per_second: SpansPerSecond::Limit(NonZeroU32::new(5000).unwrap()),
            }))
        );
        let Command::Tenant(TenantCommand::Limit(default)) = limit("default").unwrap() else {
            panic!("not tenant limit");
        };
        assert_eq!(default.spans_per_second, SpansPerSecond::Default);
        assert_eq!(default.spans_per_second.own_limit(), None);

        let logs = parse(&[
            "tenant",
            "log-limit",
            "--tenant",
            "acme",
            "--logs-per-second",
            "2000",
        ])
        .unwrap();
        assert_eq!(
            logs,
            Command::Tenant(TenantCommand::LogLimit(TenantLogLimitArgs {
                tenant: "acme".into(),
                logs_per_second: Some(SpansPerSecond::Limit(NonZeroU32::new(2000).unwrap())),
                bytes_per_second: None,
            }))
        );

        for rejected in ["0", "-5", "5k", "4294967296", ""] {
            let error = limit(rejected).expect_err(rejected);
            assert_eq!(error.kind(), ErrorKind::ValueValidation, "{rejected}");
            assert!(
                error
                    .to_string()
                    .contains("must be a positive number or default"),
                "{error}"
            );
        }
    }

    #[test]
    fn log_limit_takes_records_bytes_or_both() {
        let log_limit = |flags: &[&str]| {
            let args = [&["tenant", "log-limit", "--tenant", "acme"][..], flags].concat();
            parse(&args)
        };
        assert_eq!(
            log_limit(&["--bytes-per-second", "10MiB"]).unwrap(),
            Command::Tenant(TenantCommand::LogLimit(TenantLogLimitArgs {
                tenant: "acme".into(),
                logs_per_second: None,
                bytes_per_second: Some(BytesPerSecond::Limit(NonZeroU64::new(10 << 20).unwrap())),
            }))
        );
        let Command::Tenant(TenantCommand::LogLimit(both)) = log_limit(&[
            "--bytes-per-second",
            "default",
            "--logs-per-second",
            "default",
        ])
        .unwrap() else {
            panic!("not tenant log-limit");
        };
        assert_eq!(both.bytes_per_second, Some(BytesPerSecond::Default));
        assert_eq!(both.bytes_per_second.unwrap().own_limit(), None);
        assert_eq!(both.logs_per_second, Some(SpansPerSecond::Default));
        let Command::Tenant(TenantCommand::LogLimit(plain)) =
            log_limit(&["--bytes-per-second", "1048576"]).unwrap()
        else {
            panic!("not tenant log-limit");
        };
        assert_eq!(plain.bytes_per_second.unwrap().own_limit(), Some(1 << 20));

        // At least one of the limits.
        let error = log_limit(&[]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument);
        assert!(error.to_string().contains("--bytes-per-second"), "{error}");
        for rejected in ["0", "-5", "5 parsecs", "lots", "99999999999GiB", ""] {
            let error = log_limit(&["--bytes-per-second", rejected]).expect_err(rejected);
            assert_eq!(error.kind(), ErrorKind::ValueValidation, "{rejected}");
            assert!(
                error.to_string().contains("must be a positive size"),
                "{error}"
            );
        }
    }

    #[test]
    fn key_create_for_each_scope() {
        for (text, scope) in [
            ("ingest", KeyScope::Ingest),
            ("read", KeyScope::Read),
            ("write", KeyScope::Write),
        ] {
            assert_eq!(
                parse(&[
                    "key",
                    "create",
                    "--tenant",
                    "acme",
                    "--scope",
                    text,
                    "--name",
                    "prod collectors",
                ])
                .unwrap(),
                Command::Key(KeyCommand::Create(KeyCreateArgs {
                    tenant: "acme".into(),
                    scope,
                    name: "prod collectors".into(),
                }))
            );
        }
    }

    #[test]
    fn key_create_names_the_scopes_it_accepts() {
        let error = parse(&[
            "key", "create", "--tenant", "acme", "--scope", "admin", "--name", "x",
        ])
        .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidValue);
        let message = error.to_string();
        assert!(
            message.contains("'admin'") && message.contains("ingest, read, write"),
            "{message}"
        );
    }

    #[test]
    fn key_list() {
        assert_eq!(
            parse(&["key", "list", "--tenant", "acme"]).unwrap(),
            Command::Key(KeyCommand::List(KeyListArgs {
                tenant: "acme".into()
            }))
        );
    }

    #[test]
    fn key_revoke_takes_a_key_id() {
        let id = "6f1c2a4e-9d3b-4c1a-8e2f-0123456789ab";
        assert_eq!(
            parse(&["key", "revoke", "--tenant", "acme", "--id", id]).unwrap(),
            Command::Key(KeyCommand::Revoke(KeyRevokeArgs {
                tenant: "acme".into(),
                id: id.parse().unwrap(),
            }))
        );
        let error = parse(&["key", "revoke", "--tenant", "acme", "--id", "weft_abc"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ValueValidation);
        assert!(
            error.to_string().contains("must be a key id (a uuid)"),
            "{error}"
        );
    }

    #[test]
    fn a_missing_required_flag_is_named() {
        let error = parse(&["tenant", "create", "--name", "Acme"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument);
        assert!(error.to_string().contains("--slug <SLUG>"), "{error}");
        assert_eq!(
            error_kind(&["key", "create", "--tenant", "acme", "--name", "x"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            error_kind(&["key", "revoke", "--tenant", "acme"]),
            ErrorKind::MissingRequiredArgument
        );
    }

    #[test]
    fn a_flag_without_its_value_is_rejected() {
        assert_eq!(
            error_kind(&["demo", "--keys-file"]),
            ErrorKind::InvalidValue
        );
    }

    #[test]
    fn unknown_flags_and_subcommands_are_rejected() {
        assert_eq!(
            error_kind(&["key", "list", "--tenant", "acme", "--all"]),
            ErrorKind::UnknownArgument
        );
        assert_eq!(error_kind(&["key", "delete"]), ErrorKind::InvalidSubcommand);
        assert_eq!(error_kind(&["tenants"]), ErrorKind::InvalidSubcommand);
    }

    #[test]
    fn a_group_without_its_subcommand_shows_help() {
        for args in [&[][..], &["tenant"], &["key"]] {
            assert_eq!(
                error_kind(args),
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand,
                "{args:?}"
            );
        }
    }

    #[test]
    fn every_subcommand_has_help() {
        for args in [
            &["--help"][..],
            &["migrate", "--help"],
            &["demo", "--help"],
            &["tenant", "--help"],
            &["tenant", "create", "--help"],
            &["tenant", "limit", "--help"],
            &["tenant", "log-limit", "--help"],
            &["key", "--help"],
            &["key", "create", "--help"],
            &["key", "list", "--help"],
            &["key", "revoke", "-h"],
            &["help", "key", "revoke"],
        ] {
            assert_eq!(error_kind(args), ErrorKind::DisplayHelp, "{args:?}");
        }
    }
}

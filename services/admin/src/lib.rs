//! `weft-admin`, the operator's command line: applies migrations, manages tenants and API
//! keys, and creates the demo account of the local stack.
//!
//! The binary parses a [`Cli`] and hands it to [`run`] with the process environment.
//! Everything `run` needs from the environment comes from its [`Env`] argument, so tests
//! can run a command in-process against their own databases.

mod cli;
mod demo;
mod key;
mod migrate;
mod tenant;

pub use cli::Cli;

use anyhow::Context;
use cli::{Command, KeyCommand, TenantCommand};
use weft_bus::BusConfig;
use weft_runtime::config::Env;
use weft_storage::clickhouse::ClickHouseConfig;
use weft_storage::postgres::{Postgres, PostgresConfig};

/// Runs one command. Each command reads the configuration it needs from `env` before it
/// changes anything, so an invalid variable is reported without side effects.
pub async fn run(cli: Cli, env: &Env) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate => {
            let postgres = PostgresConfig::from_env(env)?;
            let clickhouse = ClickHouseConfig::from_env(env)?;
            migrate::run(&postgres, clickhouse).await
        }
        Command::Demo(args) => demo::run(&postgres(env)?, &args.keys_file).await,
        Command::Tenant(TenantCommand::Create(args)) => {
            tenant::create(&postgres(env)?, &args.name, &args.slug).await
        }
        Command::Tenant(TenantCommand::Limit(args)) => {
            tenant::limit(&postgres(env)?, &args.tenant, args.spans_per_second).await
        }
        Command::Tenant(TenantCommand::LogLimit(args)) => {
            tenant::log_limit(
                &postgres(env)?,
                &args.tenant,
                args.logs_per_second,
                args.bytes_per_second,
            )
            .await
        }
        Command::Key(KeyCommand::Create(args)) => {
            key::create(&postgres(env)?, &args.tenant, args.scope, &args.name).await
        }
        Command::Key(KeyCommand::List(args)) => key::list(&postgres(env)?, &args.tenant).await,
        Command::Key(KeyCommand::Revoke(args)) => {
            let bus = BusConfig::from_env(env)?;
            key::revoke(&postgres(env)?, bus, &args.tenant, args.id).await
        }
    }
}

/// A pool that connects on first use, so a command fails on the query it cannot run.
fn postgres(env: &Env) -> anyhow::Result<Postgres> {
    let config = PostgresConfig::from_env(env)?;
    Postgres::connect_lazy(&config).context("failed to configure PostgreSQL")
}

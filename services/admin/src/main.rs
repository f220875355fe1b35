//! `weft-admin`: the operator's command line. Applies migrations, manages tenants and API
//! keys, and creates the demo account of the local stack.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use weft_bus::{Bus, BusConfig};
use weft_model::{KeyScope, Role, TenantId};
use weft_runtime::config::Env;
use weft_storage::clickhouse::{ClickHouse, ClickHouseConfig};
use weft_storage::postgres::{Postgres, PostgresConfig, hash_password};

const USAGE: &str = "usage:
  weft-admin migrate
  weft-admin demo [--keys-file PATH]
  weft-admin tenant create --name NAME --slug SLUG
  weft-admin tenant limit --tenant SLUG --spans-per-second N|default
  weft-admin key create --tenant SLUG --scope ingest|read --name NAME
  weft-admin key list --tenant SLUG
  weft-admin key revoke --tenant SLUG --id KEY_ID

Configuration comes from WEFT_DATABASE_URL, WEFT_CLICKHOUSE_*, WEFT_NATS_URL and
WEFT_BUS_PREFIX (see docs/operations.md).";

const DEMO_SLUG: &str = "demo";
const DEMO_EMAIL: &str = "demo@weft.local";

#[tokio::main]
async fn main() {
    weft_runtime::telemetry::init("weft-admin", "warn");
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(error) = run(&args).await {
        eprintln!("weft-admin: {error:#}");
        std::process::exit(1);
    }
}

/// `--name value` pairs after the command words.
fn flag<'a>(args: &'a [String], name: &str) -> anyhow::Result<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
        .with_context(|| format!("missing {name}\n\n{USAGE}"))
}

async fn run(args: &[String]) -> anyhow::Result<()> {
    let env = Env::from_process();
    let postgres_config = PostgresConfig::from_env(&env)?;
    let clickhouse_config = ClickHouseConfig::from_env(&env)?;
    let words: Vec<&str> = args
        .iter()
        .take_while(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    let postgres =
        || Postgres::connect_lazy(&postgres_config).context("failed to configure PostgreSQL");
    match words.as_slice() {
        ["migrate"] => migrate(&postgres_config, &clickhouse_config).await,
        ["demo"] => {
            let keys_file = flag(args, "--keys-file")
                .map(PathBuf::from)
                .unwrap_or_else(|_| ".weft/demo.env".into());
            demo(&postgres()?, &keys_file).await
        }
        ["tenant", "create"] => {
            let tenant = postgres()?
                .create_tenant(flag(args, "--name")?, flag(args, "--slug")?)
                .await?;
            println!("created tenant {} ({})", tenant.slug, tenant.id);
            Ok(())
        }
        ["key", "create"] => {
            let db = postgres()?;
            let tenant = tenant_id(&db, flag(args, "--tenant")?).await?;
            let scope: KeyScope = flag(args, "--scope")?.parse()?;
            let key = db
                .create_api_key(tenant, flag(args, "--name")?, scope)
                .await?;
            println!(
                "created {scope} key {} ({}); it is shown only now:\n{}",
                key.prefix, key.id, key.secret
            );
            Ok(())
        }
        ["key", "list"] => {
            let db = postgres()?;
            let tenant = tenant_id(&db, flag(args, "--tenant")?).await?;
            println!(
                "{:<36}  {:<7}  {:<13}  {:<20}  status",
                "id", "scope", "prefix", "name"
            );
            for key in db.api_keys(tenant).await? {
                let status = match (key.revoked_at, key.last_used_at) {
                    (Some(at), _) => format!("revoked {}", at.format("%Y-%m-%d %H:%M")),
                    (None, Some(at)) => format!("last used {}", at.format("%Y-%m-%d %H:%M")),
                    (None, None) => "never used".to_owned(),
                };
                println!(
                    "{:<36}  {:<7}  {:<13}  {:<20}  {status}",
                    key.id, key.scope, key.prefix, key.name
                );
            }
            Ok(())
        }
        ["tenant", "limit"] => {
            let db = postgres()?;
            let tenant = tenant_id(&db, flag(args, "--tenant")?).await?;
            let limit = match flag(args, "--spans-per-second")? {
                "default" => None,
                n => Some(
                    n.parse::<u32>()
                        .ok()
                        .filter(|n| *n > 0)
                        .context("--spans-per-second must be a positive number or default")?,
                ),
            };
            db.set_spans_per_second(tenant, limit).await?;
            match limit {
                Some(n) => println!("limit set to {n} spans per second per ingest replica"),
                None => println!("limit reset to the ingest default"),
            }
            Ok(())
        }
        ["key", "revoke"] => {
            let db = postgres()?;
            let tenant = tenant_id(&db, flag(args, "--tenant")?).await?;
            let id: uuid::Uuid = flag(args, "--id")?
                .parse()
                .context("--id must be a key id (a uuid)")?;
            let digest = db
                .revoke_api_key(tenant, id)
                .await?
                .with_context(|| format!("tenant has no live key {id}"))?;
            // Ingest replicas forget the key at once; without NATS they do within their
            // key cache TTL.
            let bus = Bus::connect(BusConfig::from_env(&env)?).await?;
            if let Err(error) = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                bus.announce_key_revoked(&digest),
            )
            .await
            .unwrap_or(Err(weft_bus::BusError::Disconnected))
            {
                eprintln!(
                    "weft-admin: revoked, but could not announce it ({error}); ingest drops the key within WEFT_KEY_CACHE_TTL"
                );
            }
            println!("revoked key {id}");
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

async fn tenant_id(db: &Postgres, slug: &str) -> anyhow::Result<TenantId> {
    Ok(db
        .tenant_by_slug(slug)
        .await?
        .with_context(|| format!("no tenant with slug {slug:?}"))?
        .tenant_id())
}

async fn migrate(postgres: &PostgresConfig, clickhouse: &ClickHouseConfig) -> anyhow::Result<()> {
    Postgres::create_database_if_missing(postgres)
        .await
        .context("failed to create the PostgreSQL database")?;
    Postgres::connect_lazy(postgres)?
        .migrate()
        .await
        .context("failed to migrate PostgreSQL")?;
    let report = ClickHouse::new(clickhouse.clone())
        .migrate()
        .await
        .context("failed to migrate ClickHouse")?;
    println!(
        "migrations applied: postgres up to date; clickhouse {} applied {} statement(s), {} deferred to a newer server",
        report.server.map(|v| v.to_string()).unwrap_or_default(),
        report.applied.len(),
        report.deferred.len(),
    );
    Ok(())
}

/// Creates the demo tenant, one key of each scope and an owner who can log in to the
/// dashboard, once: keys and password are kept in `keys_file` (readable by root only),
/// and a second run reuses them while they work.
async fn demo(db: &Postgres, keys_file: &Path) -> anyhow::Result<()> {
    let tenant = match db.tenant_by_slug(DEMO_SLUG).await? {
        Some(tenant) => tenant,
        None => db.create_tenant("Demo", DEMO_SLUG).await?,
    };
    let saved = std::fs::read_to_string(keys_file).unwrap_or_default();
    let saved_key = |name: &str| {
        saved
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_owned)
    };
    let mut keys = Vec::new();
    for (variable, scope) in [
        ("WEFT_DEMO_INGEST_KEY", KeyScope::Ingest),
        ("WEFT_DEMO_READ_KEY", KeyScope::Read),
    ] {
        let reusable = match saved_key(variable) {
            Some(key) => db
                .resolve_api_key(&key)
                .await?
                .filter(|r| r.tenant == tenant.tenant_id() && r.scope == scope)
                .map(|_| key),
            None => None,
        };
        let key = match reusable {
            Some(key) => key,
            None => {
                db.create_api_key(tenant.tenant_id(), &format!("demo {scope}"), scope)
                    .await?
                    .secret
            }
        };
        keys.push((variable, key));
    }
    // The demo owner logs in to the dashboard; the password is kept with the keys.
    let password = saved_key("WEFT_DEMO_PASSWORD").unwrap_or_else(|| {
        let mut random = [0u8; 12];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut random);
        hex::encode(random)
    });
    db.upsert_member(
        tenant.tenant_id(),
        DEMO_EMAIL,
        &hash_password(&password),
        Role::Owner,
    )
    .await?;
    keys.push(("WEFT_DEMO_EMAIL", DEMO_EMAIL.to_owned()));
    keys.push(("WEFT_DEMO_PASSWORD", password));
    if let Some(dir) = keys_file.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
    }
    let contents: String = keys
        .iter()
        .map(|(name, key)| format!("{name}={key}\n"))
        .collect();
    if contents != saved {
        write_private(keys_file, &contents)?;
    }
    print!("{contents}");
    Ok(())
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("failed to write {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

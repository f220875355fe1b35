//! `weft-admin demo`: the demo account of the local stack, as `deploy/up.sh` creates it.

use anyhow::Context;
use std::path::Path;
use weft_model::{KeyScope, Role};
use weft_storage::postgres::{Postgres, hash_password};

const DEMO_SLUG: &str = "demo";
const DEMO_EMAIL: &str = "demo@weft.local";

/// Creates the demo tenant, one key of each scope and an owner who can log in to the
/// dashboard, once: keys and password are kept in `keys_file` (readable by its owner
/// only), and a second run reuses them while they work.
pub(crate) async fn run(db: &Postgres, keys_file: &Path) -> anyhow::Result<()> {
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

//! A bounded, time-limited cache in front of API key lookups, shared by ingest and query.
//! Unknown keys are cached briefly too, so a client hammering with a wrong key does not
//! hammer PostgreSQL. A revoked key is forgotten at once when the revocation is announced
//! ([`KeyCache::forget`]), and in any case within the positive TTL.

use super::{Postgres, PostgresError, ResolvedKey, key_digest};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A cached answer and when it stops being trusted.
type Entry = (Option<ResolvedKey>, Instant);

/// Cached answers of [`Postgres::resolve_api_key`].
#[derive(Debug)]
pub struct KeyCache {
    postgres: Postgres,
    ttl: Duration,
    negative_ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

impl KeyCache {
    pub fn new(postgres: Postgres, ttl: Duration, capacity: usize) -> Self {
        KeyCache {
            postgres,
            negative_ttl: ttl.min(Duration::from_secs(5)),
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub async fn resolve(&self, secret: &str) -> Result<Option<ResolvedKey>, PostgresError> {
        let digest = key_digest(secret);
        if let Some((answer, expires)) = self.entries.lock().expect("key cache lock").get(&digest)
            && *expires > Instant::now()
        {
            return Ok(*answer);
        }
        let answer = self.postgres.resolve_api_key(secret).await?;
        let ttl = if answer.is_some() {
            self.ttl
        } else {
            self.negative_ttl
        };
        let mut entries = self.entries.lock().expect("key cache lock");
        if entries.len() >= self.capacity {
            let now = Instant::now();
            entries.retain(|_, (_, expires)| *expires > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(digest, (answer, Instant::now() + ttl));
        Ok(answer)
    }

    /// Drops the cached answer for a key, by its digest (see [`key_digest`]).
    pub fn forget(&self, digest: &[u8; 32]) {
        self.entries.lock().expect("key cache lock").remove(digest);
    }
}

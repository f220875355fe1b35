//! A bounded, time-limited cache in front of API key lookups, shared by ingest and query.
//! Unknown keys are cached briefly too, so a client hammering with a wrong key does not
//! hammer PostgreSQL. A revoked key is forgotten at once when the revocation is announced
//! ([`KeyCache::forget`]), and in any case within the positive TTL.

use super::{Postgres, PostgresError, ResolvedKey, key_digest};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use weft_model::KeyScope;
use weft_runtime::{ApiError, ErrorKind};

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
    hits: Counter,
    misses: Counter,
}

pub const KEY_CACHE_HITS: &str = "weft_key_cache_hits";
pub const KEY_CACHE_MISSES: &str = "weft_key_cache_misses";

impl KeyCache {
    pub fn new(postgres: Postgres, ttl: Duration, capacity: usize) -> Self {
        KeyCache {
            postgres,
            negative_ttl: ttl.min(Duration::from_secs(5)),
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
            hits: Counter::default(),
            misses: Counter::default(),
        }
    }

    /// Adds the cache's hit and miss counters to `registry`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            KEY_CACHE_HITS,
            "API key lookups answered from the cache",
            self.hits.clone(),
        );
        registry.register(
            KEY_CACHE_MISSES,
            "API key lookups that went to PostgreSQL",
            self.misses.clone(),
        );
    }

    pub async fn resolve(&self, secret: &str) -> Result<Option<ResolvedKey>, PostgresError> {
        let digest = key_digest(secret);
        if let Some((answer, expires)) = self.entries.lock().expect("key cache lock").get(&digest)
            && *expires > Instant::now()
        {
            self.hits.inc();
            return Ok(*answer);
        }
        self.misses.inc();
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

    /// What a request's key grants, if it may `action` (scope `scope`, or one that
    /// [grants](KeyScope::grants) it): 401 for a missing, unknown or revoked key, 403 for
    /// a key of another scope, 503 when the key store cannot be reached.
    pub async fn authorize(
        &self,
        key: Option<&str>,
        scope: KeyScope,
        action: &str,
    ) -> Result<ResolvedKey, ApiError> {
        let key = key.ok_or_else(|| {
            ApiError::new(
                ErrorKind::Unauthenticated,
                "missing API key: send it as x-api-key or Authorization: Bearer",
            )
        })?;
        let resolved = self
            .resolve(key)
            .await
            .map_err(|e| ApiError::unavailable("api key lookup", &e))?
            .ok_or_else(|| {
                ApiError::new(ErrorKind::Unauthenticated, "invalid or revoked API key")
            })?;
        if !resolved.scope.grants(scope) {
            return Err(ApiError::new(
                ErrorKind::PermissionDenied,
                format!(
                    "this API key has scope {} and cannot {action}",
                    resolved.scope
                ),
            ));
        }
        Ok(resolved)
    }
}

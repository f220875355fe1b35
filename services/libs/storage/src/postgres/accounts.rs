//! Users, their organisations (tenants) and roles, and the counts that throttle password
//! attempts: per email (known or not) and per client address.

use super::{Postgres, PostgresError, Tenant};
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::time::Duration;
use weft_model::{Role, TenantId};

/// Argon2's scratch memory for one hash at a time: 19 MiB with the default parameters.
/// A thread that hashes keeps one for its life, so those mebibytes are allocated once
/// rather than per hash: freed allocations that size stay resident in the allocator's
/// per-thread arenas, and fresh ones per hash grow the process with every thread used.
#[derive(Default)]
pub struct HashingMemory(Vec<Block>);

/// The most memory a stored hash may ask for (256 MiB); the defaults use 19 MiB.
const MAX_HASH_KIB: u32 = 256 * 1024;

impl HashingMemory {
    pub fn new() -> Self {
        HashingMemory::default()
    }

    /// The first blocks `params` needs, growing the buffer when they need more.
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let count = params.block_count();
        if self.0.len() < count {
            self.0.resize(count, Block::new());
        }
        &mut self.0[..count]
    }
}

impl std::fmt::Debug for HashingMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HashingMemory({} KiB)", self.0.len())
    }
}

/// An argon2id hash of `password` with a random salt, in the PHC string format. Slow on
/// purpose: call it off the async worker threads.
pub fn hash_password(password: &str) -> String {
    hash_password_in(&mut HashingMemory::new(), password)
}

/// [`hash_password`] in `memory`.
pub fn hash_password_in(memory: &mut HashingMemory, password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
    let params = Params::default();
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password.as_bytes(),
            &salt,
            &mut output,
            memory.blocks(&params),
        )
        .expect("argon2 accepts any password of up to 4 GiB with default parameters");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes encode as a salt");
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params).try_into().expect("default parameters encode"),
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&output).expect("32 bytes are a valid output")),
    }
    .to_string()
}

/// A valid hash of a random password, checked against when there is no user, so that
/// a login takes as long whether or not the account exists.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$4bLrbmT3fSy4Oq1OZEnqPYazAKSaqZP8MUKrmAa2ET4";

/// Whether `password` matches the user's `hash` (`false` for a malformed one). With no
/// user it does the same work and answers `false`. Slow on purpose, like hashing.
pub fn password_matches(password: &str, hash: Option<&str>) -> bool {
    password_matches_in(&mut HashingMemory::new(), password, hash)
}

/// [`password_matches`] in `memory`.
pub fn password_matches_in(memory: &mut HashingMemory, password: &str, hash: Option<&str>) -> bool {
    let verified = PasswordHash::new(hash.unwrap_or(DUMMY_HASH))
        .ok()
        .and_then(|parsed| recompute(memory, password, &parsed))
        .is_some_and(|(computed, stored)| computed == stored);
    verified && hash.is_some()
}

/// The hash of `password` with the algorithm, parameters and salt of `stored`, and the
/// output `stored` holds (their comparison is constant-time).
fn recompute(
    memory: &mut HashingMemory,
    password: &str,
    stored: &PasswordHash<'_>,
) -> Option<(Output, Output)> {
    let algorithm = Algorithm::try_from(stored.algorithm).ok()?;
    let version = match stored.version {
        Some(version) => Version::try_from(version).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(stored).ok()?;
    if params.m_cost() > MAX_HASH_KIB {
        return None;
    }
    let expected = stored.hash?;
    let mut salt = [0u8; 64];
    let salt = stored.salt?.decode_b64(&mut salt).ok()?;
    let mut output = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt,
            &mut output,
            memory.blocks(&params),
        )
        .ok()?;
    Some((Output::new(&output).ok()?, expected))
}

/// A user as needed to log in.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct User {
    pub id: uuid::Uuid,
    pub email: String,
    pub password_hash: String,
}

/// Whether a password attempt may be checked now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Go ahead; the attempt is already counted.
    Granted,
    /// Not before this many seconds have passed.
    WaitSecs(u64),
}

/// The wait, in seconds, before the attempt after `failures` failures in a row on an
/// email: none for the first five, then 1 s, doubling up to 256 s (under 5 minutes).
macro_rules! login_wait_secs {
    ($failures:literal) => {
        concat!(
            "(CASE WHEN ",
            $failures,
            " < 5 THEN 0 ELSE least(300, power(2, least(",
            $failures,
            " - 5, 8))) END)"
        )
    };
}

/// How long a failure count of an email is kept without a new attempt.
macro_rules! login_failures_kept {
    () => {
        "interval '1 day'"
    };
}

/// The level of an address bucket `b` now, before this attempt: `$2` is its size and
/// `$3` the attempts it gains per second.
macro_rules! address_bucket_level {
    () => {
        "least($2, b.tokens + extract(epoch FROM clock_timestamp() - b.updated_at)::float8 * $3)"
    };
}

/// A user's role in one organisation.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Membership {
    pub tenant_id: uuid::Uuid,
    pub tenant_name: String,
    pub tenant_slug: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
}

impl Postgres {
    /// Creates a user, a tenant and the user's owner membership in one transaction.
    /// `None` when the email is already registered.
    pub async fn create_account(
        &self,
        email: &str,
        password_hash: &str,
        organisation: &str,
        slug: &str,
    ) -> Result<Option<(User, Tenant)>, PostgresError> {
        let mut tx = self.pool().begin().await?;
        let user: Option<User> = sqlx::query_as(
            "INSERT INTO users (email, password_hash) VALUES ($1, $2) ON CONFLICT DO NOTHING \
             RETURNING id, email, password_hash",
        )
        .bind(email)
        .bind(password_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(user) = user else { return Ok(None) };
        let tenant: Tenant = sqlx::query_as(
            "INSERT INTO tenants (name, slug) VALUES ($1, $2) RETURNING id, name, slug",
        )
        .bind(organisation)
        .bind(slug)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, 'owner')")
            .bind(tenant.id)
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some((user, tenant)))
    }

    /// Makes `email` a member of `tenant` with `role` and sets their password, creating
    /// the user when needed, keeping an existing membership's role and forgetting the
    /// email's failed logins. For operator set-up such as the demo account; people join
    /// through invitations.
    pub async fn upsert_member(
        &self,
        tenant: TenantId,
        email: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User, PostgresError> {
        let mut tx = self.pool().begin().await?;
        let user: User = sqlx::query_as(
            "INSERT INTO users (email, password_hash) VALUES ($1, $2) \
             ON CONFLICT (lower(email)) DO UPDATE SET password_hash = EXCLUDED.password_hash \
             RETURNING id, email, password_hash",
        )
        .bind(email)
        .bind(password_hash)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM login_failures WHERE email = lower($1)")
            .bind(email)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_uuid())
        .bind(user.id)
        .bind(role.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, PostgresError> {
        Ok(sqlx::query_as(
            "SELECT id, email, password_hash FROM users WHERE lower(email) = lower($1)",
        )
        .bind(email)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Counts a password attempt on `email`, whether or not an account has it, as a
    /// failure before the password is checked, if the failures so far allow one now.
    /// One statement decides and counts, so of any number of parallel attempts only as
    /// many go ahead as the count allows. A match then calls [`Self::clear_login_failures`].
    pub async fn reserve_login_attempt(&self, email: &str) -> Result<Attempt, PostgresError> {
        let counted: Option<i32> = sqlx::query_scalar(concat!(
            "INSERT INTO login_failures AS l (email, failures, last_attempt_at) ",
            "VALUES (lower($1), 1, clock_timestamp()) ",
            "ON CONFLICT (email) DO UPDATE SET ",
            "failures = CASE WHEN l.last_attempt_at < clock_timestamp() - ",
            login_failures_kept!(),
            " THEN 1 ELSE l.failures + 1 END, ",
            "last_attempt_at = clock_timestamp() ",
            "WHERE l.failures < 5 OR l.last_attempt_at + make_interval(secs => ",
            login_wait_secs!("l.failures"),
            ") <= clock_timestamp() ",
            "RETURNING failures"
        ))
        .bind(email)
        .fetch_optional(self.pool())
        .await?;
        if counted.is_some() {
            return Ok(Attempt::Granted);
        }
        let wait: Option<f64> = sqlx::query_scalar(concat!(
            "SELECT extract(epoch FROM last_attempt_at + make_interval(secs => ",
            login_wait_secs!("failures"),
            ") - clock_timestamp())::float8 FROM login_failures WHERE email = lower($1)"
        ))
        .bind(email)
        .fetch_optional(self.pool())
        .await?;
        Ok(Attempt::WaitSecs(wait_secs(wait.unwrap_or(1.0))))
    }

    /// Forgets the failures counted on `email`: its password just matched.
    pub async fn clear_login_failures(&self, email: &str) -> Result<(), PostgresError> {
        sqlx::query("DELETE FROM login_failures WHERE email = lower($1)")
            .bind(email)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Takes one password attempt from the bucket of a client `address`, which holds up
    /// to `burst` attempts and gains one every `refill`; in one statement, like
    /// [`Self::reserve_login_attempt`].
    pub async fn take_address_attempt(
        &self,
        address: &str,
        burst: u32,
        refill: Duration,
    ) -> Result<Attempt, PostgresError> {
        let per_second = 1.0 / refill.as_secs_f64().max(1e-3);
        let burst = f64::from(burst);
        let taken: Option<f64> = sqlx::query_scalar(concat!(
            "INSERT INTO login_address_budgets AS b (address, tokens, updated_at) ",
            "VALUES ($1, $2 - 1, clock_timestamp()) ",
            "ON CONFLICT (address) DO UPDATE SET tokens = ",
            address_bucket_level!(),
            " - 1, updated_at = clock_timestamp() WHERE ",
            address_bucket_level!(),
            " >= 1 RETURNING tokens"
        ))
        .bind(address)
        .bind(burst)
        .bind(per_second)
        .fetch_optional(self.pool())
        .await?;
        if taken.is_some() {
            return Ok(Attempt::Granted);
        }
        let wait: Option<f64> = sqlx::query_scalar(concat!(
            "SELECT (1 - ",
            address_bucket_level!(),
            ") / $3 FROM login_address_budgets b WHERE address = $1"
        ))
        .bind(address)
        .bind(burst)
        .bind(per_second)
        .fetch_optional(self.pool())
        .await?;
        Ok(Attempt::WaitSecs(wait_secs(wait.unwrap_or(1.0))))
    }

    /// Deletes the counts that no longer change an answer: failures idle for a day, and
    /// address buckets idle for `refilled` (full again, as if they did not exist).
    pub async fn forget_stale_login_attempts(
        &self,
        refilled: Duration,
    ) -> Result<(), PostgresError> {
        sqlx::query(concat!(
            "WITH failures AS (DELETE FROM login_failures ",
            "WHERE last_attempt_at < clock_timestamp() - ",
            login_failures_kept!(),
            ") DELETE FROM login_address_budgets ",
            "WHERE updated_at < clock_timestamp() - make_interval(secs => $1)"
        ))
        .bind(refilled.as_secs_f64())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The organisations of a user, oldest first.
    pub async fn memberships(&self, user: uuid::Uuid) -> Result<Vec<Membership>, PostgresError> {
        Ok(sqlx::query_as(
            "SELECT t.id AS tenant_id, t.name AS tenant_name, t.slug AS tenant_slug, m.role \
             FROM memberships m JOIN tenants t ON t.id = m.tenant_id \
             WHERE m.user_id = $1 ORDER BY m.created_at, t.name",
        )
        .bind(user)
        .fetch_all(self.pool())
        .await?)
    }
}

/// Whole seconds to wait, at least one.
fn wait_secs(seconds: f64) -> u64 {
    if seconds.is_finite() && seconds > 1.0 {
        seconds.ceil() as u64
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_whole_seconds_of_at_least_one() {
        assert_eq!(wait_secs(0.2), 1);
        assert_eq!(wait_secs(-3.0), 1);
        assert_eq!(wait_secs(f64::NAN), 1);
        assert_eq!(wait_secs(1.5), 2);
        assert_eq!(wait_secs(256.0), 256);
    }

    #[test]
    fn passwords_hash_with_a_salt_and_verify() {
        let hash = hash_password("correct horse battery");
        assert!(hash.starts_with("$argon2id$"));
        assert_ne!(hash, hash_password("correct horse battery"), "salted");
        assert!(password_matches("correct horse battery", Some(&hash)));
        assert!(!password_matches("correct horse batter", Some(&hash)));
        assert!(!password_matches(
            "correct horse battery",
            Some("not a hash")
        ));
        assert!(!password_matches("correct horse battery", None));
        assert!(
            PasswordHash::new(DUMMY_HASH).is_ok(),
            "the dummy hash costs a real check"
        );
    }

    #[test]
    fn hashes_are_those_of_the_argon2_crate_and_memory_is_reused() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let mut memory = HashingMemory::new();
        let ours = hash_password_in(&mut memory, "correct horse battery");
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok(),
            "{ours}"
        );
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let theirs = Argon2::default()
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        assert!(password_matches_in(
            &mut memory,
            "correct horse battery",
            Some(&theirs)
        ));
        assert!(!password_matches_in(
            &mut memory,
            "correct horse batter",
            Some(&theirs)
        ));
        assert_eq!(
            memory.0.len(),
            Params::DEFAULT_M_COST as usize,
            "one buffer, kept"
        );
        let greedy = "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$4bLrbmT3fSy4Oq1OZEnqPYazAKSaqZP8MUKrmAa2ET4";
        assert!(
            !password_matches_in(&mut memory, "x", Some(greedy)),
            "4 GiB refused"
        );
    }
}

//! Dashboard sessions: a signed JWT (HS256) in an HttpOnly, SameSite=Lax cookie, recorded
//! in PostgreSQL by its id so that the server can end it (logout, "log out everywhere",
//! removal from the organisation); and CSRF tokens: bound to the session's id once logged
//! in, and to a random cookie before.

use super::DashboardState;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::time::Duration;
use weft_storage::postgres::PostgresError;

pub const SESSION_COOKIE: &str = "weft_session";
pub const PRE_SESSION_COOKIE: &str = "weft_csrf";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: uuid::Uuid,
    /// The organisation the user is working in.
    pub tid: uuid::Uuid,
    pub iat: u64,
    pub exp: u64,
    /// Random id of this session; CSRF tokens are bound to it.
    pub jti: String,
}

/// Why a session cookie is not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionError {
    Expired,
    Invalid,
}

pub struct SessionKeys {
    secret: Vec<u8>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
    secure_cookies: bool,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut buf);
    hex::encode(buf)
}

impl SessionKeys {
    pub fn new(secret: &[u8], ttl: Duration, secure_cookies: bool) -> Self {
        SessionKeys {
            secret: secret.to_vec(),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl,
            secure_cookies,
        }
    }

    /// A new token for `user` in `tenant`: the cookie header value and its claims. Only
    /// [`DashboardState::begin_session`] calls it, so every token has its row.
    fn issue(&self, user: uuid::Uuid, tenant: uuid::Uuid) -> (String, Claims) {
        let iat = now();
        let claims = Claims {
            sub: user,
            tid: tenant,
            iat,
            exp: iat + self.ttl.as_secs(),
            jti: random_hex(16),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail");
        (
            self.cookie(SESSION_COOKIE, &token, self.ttl.as_secs()),
            claims,
        )
    }

    pub fn verify(&self, token: &str) -> Result<Claims, SessionError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => SessionError::Expired,
                _ => SessionError::Invalid,
            })
    }

    fn cookie(&self, name: &str, value: &str, max_age: u64) -> String {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
    }

    pub fn clear_session(&self) -> String {
        self.cookie(SESSION_COOKIE, "", 0)
    }

    /// A random value for the pre-session cookie of the sign-up and login forms.
    pub fn new_pre_session(&self) -> (String, String) {
        let nonce = random_hex(16);
        (self.cookie(PRE_SESSION_COOKIE, &nonce, 3600), nonce)
    }

    fn mac(&self, purpose: &str, binding: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("hmac takes any key");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(binding.as_bytes());
        mac
    }

    /// The CSRF token of forms bound to `binding` (a session id or a pre-session nonce).
    pub fn csrf_token(&self, binding: &str) -> String {
        hex::encode(self.mac("csrf", binding).finalize().into_bytes())
    }

    /// Checks a submitted CSRF token in constant time.
    pub fn csrf_ok(&self, binding: &str, token: &str) -> bool {
        !binding.is_empty()
            && hex::decode(token)
                .is_ok_and(|bytes| self.mac("csrf", binding).verify_slice(&bytes).is_ok())
    }
}

/// A session just begun: what the response sets and what its page binds to.
pub struct NewSession {
    /// The `Set-Cookie` value.
    pub cookie: String,
    /// The session id, which the CSRF tokens of the page that sets the cookie are bound to.
    pub id: String,
}

impl DashboardState {
    /// Begins a session of `user` in `tenant`, recorded before its cookie is handed out.
    pub async fn begin_session(
        &self,
        user: uuid::Uuid,
        tenant: uuid::Uuid,
    ) -> Result<NewSession, PostgresError> {
        let (cookie, claims) = self.sessions.issue(user, tenant);
        let expires_at = chrono::DateTime::from_timestamp(claims.exp as i64, 0)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
        self.postgres
            .create_session(&claims.jti, user, tenant, expires_at)
            .await?;
        Ok(NewSession {
            cookie,
            id: claims.jti,
        })
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: Option<&'a str>, name: &str) -> Option<&'a str> {
    header?
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session_keys(ttl: Duration) -> SessionKeys {
        SessionKeys::new(b"0123456789abcdef0123456789abcdef", ttl, false)
    }

    fn token_of(cookie: &str) -> &str {
        cookie_value(Some(cookie.split(';').next().unwrap()), SESSION_COOKIE).unwrap()
    }

    #[test]
    fn sessions_round_trip_and_reject_forgeries() {
        let keys = session_keys(Duration::from_secs(60));
        let (user, tenant) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let (cookie, issued) = keys.issue(user, tenant);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
        let claims = keys.verify(token_of(&cookie)).unwrap();
        assert_eq!(
            (claims.sub, claims.tid, &claims.jti),
            (user, tenant, &issued.jti)
        );
        let other = SessionKeys::new(
            b"another secret of thirty-two byte",
            Duration::from_secs(60),
            false,
        );
        assert_eq!(
            other.verify(token_of(&cookie)).unwrap_err(),
            SessionError::Invalid
        );
        assert_eq!(keys.verify("not.a.jwt").unwrap_err(), SessionError::Invalid);
        let (expired, _) = session_keys(Duration::ZERO).issue(user, tenant);
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(
            keys.verify(token_of(&expired)).unwrap_err(),
            SessionError::Expired
        );
    }

    #[test]
    fn csrf_tokens_are_bound() {
        let keys = session_keys(Duration::from_secs(60));
        let token = keys.csrf_token("session-a");
        assert!(keys.csrf_ok("session-a", &token));
        assert!(!keys.csrf_ok("session-b", &token));
        assert!(!keys.csrf_ok("session-a", "zz"));
        assert!(!keys.csrf_ok("", &keys.csrf_token("")));
    }

    #[test]
    fn cookies_are_found_by_name() {
        assert_eq!(
            cookie_value(Some("a=1; weft_csrf=xyz"), "weft_csrf"),
            Some("xyz")
        );
        assert_eq!(cookie_value(Some("a=1"), "weft_csrf"), None);
        assert_eq!(cookie_value(None, "a"), None);
    }
}

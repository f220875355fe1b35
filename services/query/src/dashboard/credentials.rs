//! What users sign in with: the rules for a new email address and password, and argon2
//! hashing and verification, run off the async threads since each takes tens of
//! milliseconds.

use super::error::DashboardError;

pub fn valid_email(email: &str) -> bool {
    (3..=320).contains(&email.len())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace)
}

/// Why a new password is not accepted.
pub fn weak_password(password: &str) -> Option<&'static str> {
    if password.chars().count() < 10 {
        Some("Choose a password of at least 10 characters.")
    } else if password.len() > 200 {
        Some("Choose a password of at most 200 characters.")
    } else {
        None
    }
}

pub async fn hash_password(password: String) -> Result<String, DashboardError> {
    tokio::task::spawn_blocking(move || weft_storage::postgres::hash_password(&password))
        .await
        .map_err(DashboardError::PasswordHashing)
}

/// Whether `password` matches `hash`; with no hash (an unknown email) it takes as long
/// and fails.
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        weft_storage::postgres::password_matches(&password, hash.as_deref())
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_passwords() {
        assert!(valid_email("a@b.io"));
        for bad in [
            "",
            "ab",
            "no-at.example",
            "a@b",
            "a b@c.io",
            "@b.io",
            "a@.io",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
        assert!(weak_password("short").is_some());
        assert!(weak_password(&"x".repeat(201)).is_some());
        assert!(weak_password("correct horse").is_none());
    }
}

//! Password checks at login and when accepting an invitation: repeated failures on an
//! account wait longer and longer, and an unknown email takes as long as a wrong
//! password, so neither guessing nor probing for accounts pays.

use super::DashboardState;
use super::credentials::verify_password;
use axum::http::StatusCode;
use weft_storage::postgres::{PostgresError, User};

/// After five failures in a row each attempt must wait twice as long, up to 5 minutes.
fn login_wait_secs(
    failed: i32,
    last_failure: Option<chrono::DateTime<chrono::Utc>>,
) -> Option<i64> {
    let last = last_failure?;
    if failed < 5 {
        return None;
    }
    let wait = 2_i64.pow((failed - 5).min(8) as u32).min(300);
    let remaining = wait - (chrono::Utc::now() - last).num_seconds();
    (remaining > 0).then_some(remaining)
}

/// Why a password check did not let the user in.
pub enum LoginRefused {
    /// Too many failures: wait this many seconds.
    Throttled(i64),
    /// Unknown email or wrong password; the two are not told apart.
    Wrong,
    Unavailable(PostgresError),
}

impl LoginRefused {
    /// The message and status of the form that asked for the password.
    pub fn explain(self) -> Result<(String, StatusCode), PostgresError> {
        match self {
            LoginRefused::Throttled(wait) => Ok((
                format!("Too many failed attempts. Try again in {wait} seconds."),
                StatusCode::TOO_MANY_REQUESTS,
            )),
            LoginRefused::Wrong => Ok((
                "Wrong email or password.".to_owned(),
                StatusCode::UNAUTHORIZED,
            )),
            LoginRefused::Unavailable(error) => Err(error),
        }
    }
}

/// Checks `password` for the account `email`, slowing down repeated failures and taking
/// as long for an unknown email as for a wrong password.
pub async fn check_password(
    state: &DashboardState,
    email: &str,
    password: &str,
) -> Result<User, LoginRefused> {
    let user = state
        .postgres
        .user_by_email(email)
        .await
        .map_err(LoginRefused::Unavailable)?;
    if let Some(wait) = user
        .as_ref()
        .and_then(|u| login_wait_secs(u.failed_logins, u.last_failed_login_at))
    {
        return Err(LoginRefused::Throttled(wait));
    }
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let verified = verify_password(password.to_owned(), hash).await;
    let Some(user) = user else {
        return Err(LoginRefused::Wrong);
    };
    state
        .postgres
        .record_login(user.id, verified)
        .await
        .map_err(LoginRefused::Unavailable)?;
    if verified {
        Ok(user)
    } else {
        Err(LoginRefused::Wrong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_waits_double_after_five_failures() {
        let just_now = Some(chrono::Utc::now());
        assert_eq!(login_wait_secs(4, just_now), None);
        assert_eq!(login_wait_secs(5, just_now), Some(1));
        assert_eq!(login_wait_secs(8, just_now), Some(8));
        assert_eq!(login_wait_secs(30, just_now), Some(256));
        assert_eq!(
            login_wait_secs(8, Some(chrono::Utc::now() - chrono::Duration::seconds(60))),
            None
        );
    }
}

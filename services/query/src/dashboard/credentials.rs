//! What users sign in with: the rules for a new email address and password, and argon2
//! hashing and verification. Each hash takes tens of milliseconds and 19 MiB, so
//! [`PasswordHashing`] runs them on a few threads of their own, each keeping its 19 MiB,
//! and bounds how many requests wait for one.

use super::error::DashboardError;
use std::collections::HashSet;
use std::sync::mpsc;
use std::sync::{Arc, LazyLock, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use weft_storage::postgres::{HashingMemory, hash_password_in, password_matches_in};

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

/// Passwords too common to accept whatever their length; see the file's header for
/// its source and licence.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../data/common-passwords.txt")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .collect()
});

/// The score (0 to 4) below which zxcvbn calls a password too weak: at least 10^10
/// guesses, as it recommends.
const MIN_SCORE: u8 = 3;

/// zxcvbn's work grows with length; the first this many characters decide.
const ESTIMATED_CHARS: usize = 64;

/// Why a new password is not accepted, and how to choose a better one; `context` holds
/// what the account is known by (email, organisation), which makes a password weak.
pub fn weak_password(password: &str, context: &[&str]) -> Option<String> {
    const ADVICE: &str =
        "A few unrelated words, or a password manager's suggestion, make a strong password.";
    let length = password.chars().count();
    if length < 10 {
        return Some(format!(
            "Choose a password of at least 10 characters (this one has {length}). {ADVICE}"
        ));
    }
    if password.len() > 200 {
        return Some("Choose a password of at most 200 characters.".to_owned());
    }
    if COMMON_PASSWORDS.contains(password.to_lowercase().as_str()) {
        return Some(format!(
            "This is one of the most common passwords, found in lists of leaked ones, so it is among the first guessed. {ADVICE}"
        ));
    }
    let inputs = context_words(context);
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let estimated: String = password.chars().take(ESTIMATED_CHARS).collect();
    let entropy = zxcvbn::zxcvbn(&estimated, &inputs);
    if u8::from(entropy.score()) >= MIN_SCORE {
        return None;
    }
    let mut why = String::from("This password is too easy to guess");
    let mut advice = Vec::new();
    if let Some(feedback) = entropy.feedback() {
        if let Some(warning) = feedback.warning() {
            why = format!(
                "{why}: {}",
                warning.to_string().trim_end_matches('.').to_lowercase()
            );
        }
        advice.extend(feedback.suggestions().iter().map(ToString::to_string));
    }
    let lowered = password.to_lowercase();
    let uses_context = inputs.iter().any(|input| lowered.contains(input));
    if uses_context {
        advice.insert(0, "Leave out your email and organisation name.".to_owned());
    }
    advice.push(ADVICE.to_owned());
    advice.dedup();
    Some(format!("{why}. {}", advice.join(" ")))
}

/// What a password must not be made of: each of `context` whole, its words, and its
/// words run together ("Acme Widgets" is also "acme", "widgets" and "acmewidgets").
fn context_words(context: &[&str]) -> Vec<String> {
    let mut words = Vec::new();
    for text in context {
        let text = text.to_lowercase();
        let parts: Vec<&str> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|part| !part.is_empty())
            .collect();
        words.push(parts.concat());
        if let Some((local, domain)) = text.split_once('@') {
            words.push(local.to_owned());
            words.extend(domain.split('.').next().map(str::to_owned));
        }
        words.extend(parts.iter().map(|part| (*part).to_owned()));
        words.push(text.clone());
    }
    words.retain(|word| word.chars().count() >= 3);
    words.sort();
    words.dedup();
    words
}

/// Argon2 work: `concurrency` threads that hash, each in memory it allocates once and
/// keeps (so the process holds `concurrency` × 19 MiB for hashing, whatever the load),
/// and room for `queue` more requests waiting. A request past them is refused at once,
/// before it costs anything, so a flood of logins neither grows the process nor delays
/// other pages.
pub struct PasswordHashing {
    /// Requests hashing or waiting to.
    admitted: Arc<Semaphore>,
    jobs_tx: mpsc::Sender<Job>,
}

/// One hash or verification, run by a hashing thread in its memory.
type Job = Box<dyn FnOnce(&mut HashingMemory) + Send>;

/// A request's place among those [`PasswordHashing`] admitted: one hash or verification.
pub struct HashingTurn {
    admitted: OwnedSemaphorePermit,
    jobs_tx: mpsc::Sender<Job>,
}

impl PasswordHashing {
    /// Starts the hashing threads; they stop when this is dropped.
    pub fn new(concurrency: usize, queue: usize) -> Self {
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        for _ in 0..concurrency {
            let jobs_rx = jobs_rx.clone();
            std::thread::Builder::new()
                .name("weft-argon2".to_owned())
                .spawn(move || {
                    let mut memory = HashingMemory::new();
                    loop {
                        let job = jobs_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok(job) = job else { return };
                        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            job(&mut memory)
                        }));
                        if done.is_err() {
                            tracing::error!("a password hash panicked");
                        }
                    }
                })
                .expect("start a password hashing thread");
        }
        PasswordHashing {
            admitted: Arc::new(Semaphore::new(concurrency + queue)),
            jobs_tx,
        }
    }

    /// A place in the queue, or `None` when it is full (answered 429).
    pub fn admit(&self) -> Option<HashingTurn> {
        let admitted = self.admitted.clone().try_acquire_owned().ok()?;
        Some(HashingTurn {
            admitted,
            jobs_tx: self.jobs_tx.clone(),
        })
    }
}

impl HashingTurn {
    /// Runs `work` on a hashing thread when one is free. The place goes with the work,
    /// so a client that hangs up does not free it before the hash ends. `None` when the
    /// work panicked.
    async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce(&mut HashingMemory) -> T + Send + 'static,
    ) -> Option<T> {
        let (done_tx, done_rx) = oneshot::channel();
        let admitted = self.admitted;
        let job: Job = Box::new(move |memory| {
            let done = work(memory);
            drop(admitted);
            let _ = done_tx.send(done);
        });
        self.jobs_tx.send(job).ok()?;
        done_rx.await.ok()
    }

    pub async fn hash_password(self, password: String) -> Result<String, DashboardError> {
        self.run(move |memory| hash_password_in(memory, &password))
            .await
            .ok_or(DashboardError::PasswordHashing)
    }

    /// Whether `password` matches `hash`; with no hash (an unknown email) it takes as
    /// long and fails.
    pub async fn verify_password(self, password: String, hash: Option<String>) -> bool {
        self.run(move |memory| password_matches_in(memory, &password, hash.as_deref()))
            .await
            .unwrap_or(false)
    }
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
        assert!(weak_password("short", &[]).unwrap().contains("at least 10"));
        assert!(weak_password(&"x".repeat(201), &[]).is_some());
        assert!(weak_password("violet tandem ocean quarry", &[]).is_none());
    }

    #[test]
    fn weak_passwords_are_refused_with_a_reason() {
        // On the vendored list, whatever the case.
        let common = weak_password("BASKETBALL", &[]).unwrap();
        assert!(common.contains("most common passwords"), "{common}");
        // Long enough, not on the list, but a pattern zxcvbn sees through.
        let pattern = weak_password("aaaaaaaaaaaa", &[]).unwrap();
        assert!(pattern.contains("too easy to guess: repeats"), "{pattern}");
        let keyboard = weak_password("qwertyuiop[]", &[]).unwrap();
        assert!(keyboard.contains("too easy to guess"), "{keyboard}");
        // What the account is known by counts against it.
        let own = weak_password("acmewidgets2024", &["ops@acmewidgets.io", "Acme Widgets"]);
        assert!(own.unwrap().contains("Leave out your email"));
        for strong in ["correct horse battery staple", "Tr0ub4dour&3-xylophone"] {
            assert_eq!(
                weak_password(strong, &["ops@example.com"]),
                None,
                "{strong}"
            );
        }
        // Every line of the list is refused.
        assert!(COMMON_PASSWORDS.len() > 1500);
        assert!(
            COMMON_PASSWORDS
                .iter()
                .all(|p| weak_password(p, &[]).is_some())
        );
    }

    #[tokio::test]
    async fn hashing_admits_its_slots_and_queue_and_no_more() {
        let hashing = PasswordHashing::new(1, 2);
        let turns: Vec<HashingTurn> = (0..3).map_while(|_| hashing.admit()).collect();
        assert_eq!(turns.len(), 3);
        assert!(hashing.admit().is_none(), "full: refused at once");
        let mut turns = turns.into_iter();
        let hash = turns
            .next()
            .unwrap()
            .hash_password("correct horse".into())
            .await
            .unwrap();
        assert!(hashing.admit().is_some(), "a finished hash frees its place");
        assert!(
            turns
                .next()
                .unwrap()
                .verify_password("correct horse".into(), Some(hash))
                .await
        );
    }
}

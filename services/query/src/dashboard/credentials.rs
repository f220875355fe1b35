//! What users sign in with: the rules for a new email address and password, and argon2
//! hashing and verification. Each hash takes tens of milliseconds and 19 MiB, so
//! [`PasswordHashing`] runs them on a few threads of their own, each keeping its 19 MiB,
//! and bounds how many requests wait for one.

use super::error::DashboardError;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
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
        assert!(weak_password("short").is_some());
        assert!(weak_password(&"x".repeat(201)).is_some());
        assert!(weak_password("correct horse").is_none());
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

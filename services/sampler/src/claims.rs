//! The bus messages batches are handling now, by stream sequence. JetStream delivers a
//! message again when its ack wait passes without an acknowledgement or a progress ack:
//! after a crash, and also under load, while its first delivery is still being handled
//! here (a progress ack sent late). Such a copy waits for its first delivery's batch and
//! is then checked like any redelivery, so what it carries is stored once, and it is
//! never acknowledged before its first delivery's outcome is known.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;
use weft_bus::Envelope;

#[derive(Default)]
pub struct Claims {
    handling: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
}

/// A batch's hold on its messages, let go when dropped.
pub struct Claim<'a> {
    claims: &'a Claims,
    /// The claimed messages' sequences and locks, in the same order.
    sequences: Vec<u64>,
    guards: Vec<OwnedMutexGuard<()>>,
    /// Messages another batch was handling when this one claimed them.
    contended: foldhash::HashSet<u64>,
}

impl Claims {
    /// Claims the messages (ascending, so two batches never wait on each other in a
    /// circle), waiting for any that another batch is handling.
    pub async fn claim(&self, sequences: impl Iterator<Item = u64>) -> Claim<'_> {
        let mut sorted: Vec<u64> = sequences.filter(|s| *s != 0).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let mut claim = Claim {
            claims: self,
            sequences: Vec::with_capacity(sorted.len()),
            guards: Vec::with_capacity(sorted.len()),
            contended: Default::default(),
        };
        for sequence in sorted {
            let lock = self
                .handling
                .lock()
                .expect("handling lock")
                .entry(sequence)
                .or_default()
                .clone();
            let guard = match lock.clone().try_lock_owned() {
                Ok(guard) => guard,
                Err(_) => {
                    claim.contended.insert(sequence);
                    lock.lock_owned().await
                }
            };
            claim.sequences.push(sequence);
            claim.guards.push(guard);
        }
        claim
    }

    /// Whether no message is claimed (nor waited for).
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.handling.lock().expect("handling lock").is_empty()
    }
}

impl Claim<'_> {
    /// Whether some of what the message carries may be stored already: it was delivered
    /// before, or another batch was handling it.
    pub fn unsure(&self, envelope: &Envelope) -> bool {
        envelope.redelivered || self.contended.contains(&envelope.stream_sequence)
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.guards.clear();
        // Forget this batch's messages that no other batch waits for (a waiter holds a
        // clone of the lock, and forgets it in turn). Only its own: every message in
        // flight is in the map (tens of thousands while traces wait for decisions), and
        // a sweep of all of them per batch would cost more than the batch.
        let mut handling = self.claims.handling.lock().expect("handling lock");
        for sequence in &self.sequences {
            if handling
                .get(sequence)
                .is_some_and(|lock| Arc::strong_count(lock) == 1)
            {
                handling.remove(sequence);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn envelope(sequence: u64, redelivered: bool) -> Envelope {
        Envelope {
            tenant: weft_model::TenantId::random(),
            payload: bytes::Bytes::new(),
            traceparent: None,
            redelivered,
            stream_sequence: sequence,
        }
    }

    #[tokio::test]
    async fn a_message_handled_elsewhere_waits_and_is_then_unsure() {
        let claims = Arc::new(Claims::default());
        let first = claims.claim([3, 1].into_iter()).await;
        assert!(!first.unsure(&envelope(1, false)));
        let (claimed_tx, mut claimed_rx) = tokio::sync::oneshot::channel();
        let waiting = {
            let claims = claims.clone();
            tokio::spawn(async move {
                let second = claims.claim([2, 3].into_iter()).await;
                let unsure = (
                    second.unsure(&envelope(2, false)),
                    second.unsure(&envelope(3, false)),
                );
                let _ = claimed_tx.send(unsure);
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            claimed_rx.try_recv().is_err(),
            "message 3 waits for the first batch"
        );
        drop(first);
        waiting.await.unwrap();
        assert_eq!(claimed_rx.await.unwrap(), (false, true));
        assert!(claims.is_empty(), "nothing held once both let go");
        let third = claims.claim([5].into_iter()).await;
        assert!(third.unsure(&envelope(5, true)), "a redelivery is unsure");
    }
}

//! Control announcements: small typed JSON messages on `<prefix>.control.*` that tell
//! every replica to refresh a cache (a revoked key, a changed sampling policy or alert
//! rule). Plain NATS, not JetStream: a replica that misses one still refreshes when its
//! cache entry expires, so an announcement only makes a change take effect sooner.

use crate::{Bus, BusError};
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use weft_model::TenantId;
use weft_runtime::shutdown::CancellationToken;

/// A control announcement and the topic it travels on.
pub trait ControlMessage: Serialize + DeserializeOwned + Send + 'static {
    /// The part of the subject after `<prefix>.control.`.
    const TOPIC: &'static str;
}

/// An API key was revoked; `digest` is the hex SHA-256 of the key, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct KeyRevoked {
    pub digest: String,
}

impl KeyRevoked {
    pub fn new(digest: &[u8; 32]) -> Self {
        KeyRevoked {
            digest: hex::encode(digest),
        }
    }

    /// The digest, when the announcement carries a well-formed one.
    pub fn digest(&self) -> Option<[u8; 32]> {
        hex::decode(&self.digest)
            .ok()
            .and_then(|d| <[u8; 32]>::try_from(d).ok())
    }
}

impl ControlMessage for KeyRevoked {
    const TOPIC: &'static str = "keys.revoked";
}

/// A tenant's sampling policy changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PolicyChanged {
    pub tenant_id: TenantId,
}

impl ControlMessage for PolicyChanged {
    const TOPIC: &'static str = "policies.changed";
}

/// A tenant's alert rules or channels changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RuleChanged {
    pub tenant_id: TenantId,
}

impl ControlMessage for RuleChanged {
    const TOPIC: &'static str = "rules.changed";
}

/// Announcements of one kind, from the moment of subscribing.
pub struct ControlSubscription<M> {
    subscriber: async_nats::Subscriber,
    _message: PhantomData<fn() -> M>,
}

impl<M: ControlMessage> ControlSubscription<M> {
    /// The next announcement; malformed ones are logged and skipped. `None` once the
    /// connection is closed for good.
    pub async fn next(&mut self) -> Option<M> {
        while let Some(message) = self.subscriber.next().await {
            match serde_json::from_slice(&message.payload) {
                Ok(decoded) => return Some(decoded),
                Err(error) => {
                    tracing::warn!(topic = M::TOPIC, %error, "ignoring a malformed control message");
                }
            }
        }
        None
    }

    /// Calls `apply` with every announcement until `shutdown`.
    pub async fn follow(mut self, shutdown: CancellationToken, mut apply: impl FnMut(M) + Send) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                message = self.next() => match message {
                    Some(message) => apply(message),
                    None => return,
                },
            }
        }
    }
}

impl Bus {
    /// Tells every replica subscribed to `M` about `message`, flushed before returning.
    pub async fn announce<M: ControlMessage>(&self, message: &M) -> Result<(), BusError> {
        let payload = serde_json::to_vec(message).expect("control messages serialise");
        self.client
            .publish(self.subjects.control(M::TOPIC), payload.into())
            .await
            .map_err(|e| BusError::Publish(e.to_string()))?;
        self.client
            .flush()
            .await
            .map_err(|e| BusError::Publish(e.to_string()))
    }

    pub async fn subscribe<M: ControlMessage>(&self) -> Result<ControlSubscription<M>, BusError> {
        let subscriber = self
            .client
            .subscribe(self.subjects.control(M::TOPIC))
            .await
            .map_err(|e| BusError::Connect(e.to_string()))?;
        Ok(ControlSubscription {
            subscriber,
            _message: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_json() {
        let revoked = KeyRevoked::new(&[7; 32]);
        let json = serde_json::to_string(&revoked).unwrap();
        assert_eq!(json, format!("{{\"digest\":\"{}\"}}", "07".repeat(32)));
        let back: KeyRevoked = serde_json::from_str(&json).unwrap();
        assert_eq!(back.digest(), Some([7; 32]));
        assert_eq!(
            KeyRevoked {
                digest: "zz".into()
            }
            .digest(),
            None
        );
    }
}

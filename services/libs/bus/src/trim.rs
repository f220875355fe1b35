//! Trimming what every consumer has acknowledged. Streams keep messages by limits (age
//! and bytes, discarding new messages when full), so that nothing accepted is lost while
//! no consumer reads. Acknowledged messages would otherwise stay until they age out, and
//! a busy stream would fill with them and refuse new data: so every few seconds the
//! stream is purged below the lowest ack floor of the consumers that still have messages
//! outstanding, as an interest-based stream would, but without dropping what arrives
//! while a consumer group does not exist yet.
//!
//! The purge is of the whole stream, never of one partition's subject. The first trim
//! purged each partition subject below its own readers' floors; in the kill -9 test (a
//! sampler killed mid-stream, a successor taking over) that lost a third of the traces on
//! NATS 2.9.10, acknowledged and never stored, though how was not isolated. Below the
//! lowest floor of the consumers with something outstanding, every message is
//! acknowledged by every consumer of its partition, and nothing is skipped that any
//! consumer still needs.

use crate::{Bus, BusError, Signal};
use futures::TryStreamExt;
use std::time::Duration;
use weft_model::PartitionSet;
use weft_runtime::shutdown::CancellationToken;

/// A consumer as the trim sees it.
#[derive(Clone, Debug)]
struct Reader {
    name: String,
    /// The stream sequence up to which it has acknowledged every message it reads.
    ack_floor: u64,
    /// Whether it has messages not yet delivered, or delivered and not acknowledged.
    outstanding: bool,
}

/// The highest stream sequence up to which every message is acknowledged by every
/// reader, given the stream's last sequence when the readers were looked at: the lowest
/// floor of the readers with something outstanding, or everything if none has.
fn acknowledged_up_to(readers: &[Reader], last_sequence: u64) -> u64 {
    readers
        .iter()
        .filter(|r| r.outstanding)
        .map(|r| r.ack_floor)
        .min()
        .unwrap_or(last_sequence)
}

impl Bus {
    /// Purges the messages of `signal` that every consumer has acknowledged (see the
    /// module note); returns how many were purged. Nothing is purged unless `group` (the
    /// group that must see every message: the sampler) has a consumer of every partition,
    /// so nothing is purged that it has not read.
    pub async fn trim_acknowledged(&self, signal: Signal, group: &str) -> Result<u64, BusError> {
        let error = |e: &dyn std::fmt::Display| BusError::Stream(e.to_string());
        let mut stream = self
            .jetstream
            .get_stream(self.subjects.stream(signal))
            .await
            .map_err(|e| error(&e))?;
        // The stream first: a consumer seen with nothing outstanding afterwards has
        // acknowledged everything up to this last sequence.
        let state = stream.info().await.map_err(|e| error(&e))?.state.clone();
        let readers: Vec<Reader> = stream
            .consumers()
            .map_ok(|info| Reader {
                name: info.name,
                ack_floor: info.ack_floor.stream_sequence,
                outstanding: info.num_pending > 0 || info.num_ack_pending > 0,
            })
            .try_collect()
            .await
            .map_err(|e| error(&e))?;
        let every_partition_read = PartitionSet::all(self.config.partitions).iter().all(|p| {
            let own = self.subjects.consumer(group, signal, p);
            readers.iter().any(|r| r.name == own)
        });
        if !every_partition_read {
            return Ok(0);
        }
        let floor = acknowledged_up_to(&readers, state.last_sequence);
        if state.messages == 0 || floor < state.first_sequence {
            return Ok(0);
        }
        let answer = stream
            .purge()
            .sequence(floor + 1)
            .await
            .map_err(|e| error(&e))?;
        self.metrics
            .trimmed
            .get_or_create(&crate::metrics::SignalLabels {
                signal: signal.as_str(),
            })
            .inc_by(answer.purged);
        Ok(answer.purged)
    }

    /// Trims `signals` (see [`Bus::trim_acknowledged`]) every `interval` until
    /// `shutdown`. A failed trim is logged and tried again next time: it only costs room.
    pub async fn trim_until(
        &self,
        signals: &[Signal],
        group: &str,
        interval: Duration,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            for signal in signals {
                if let Err(error) = self.trim_acknowledged(*signal, group).await {
                    tracing::warn!(%error, signal = signal.as_str(), "trimming acknowledged messages failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(ack_floor: u64, outstanding: bool) -> Reader {
        Reader {
            name: String::new(),
            ack_floor,
            outstanding,
        }
    }

    #[test]
    fn the_slowest_reader_with_something_outstanding_holds_the_stream_back() {
        let readers = [reader(90, true), reader(40, true), reader(500, false)];
        assert_eq!(acknowledged_up_to(&readers, 600), 40);
        // A reader that acknowledged nothing and waits for messages holds back all.
        assert_eq!(
            acknowledged_up_to(&[reader(0, true), reader(90, true)], 600),
            0
        );
        // Readers with nothing outstanding (a partition without traffic) hold back none.
        assert_eq!(
            acknowledged_up_to(&[reader(0, false), reader(7, false)], 600),
            600
        );
        assert_eq!(acknowledged_up_to(&[], 600), 600);
    }
}

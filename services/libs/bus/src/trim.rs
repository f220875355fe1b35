//! Trimming what every consumer has acknowledged. Streams keep messages by limits (age
//! and bytes, discarding new messages when full), so that nothing accepted is lost while
//! no consumer reads. Acknowledged messages would otherwise stay until they age out, and
//! a busy stream would fill with them and refuse new data: so every few seconds, each
//! partition subject is purged below the lowest ack floor of the consumers that read it
//! (the sampler's, alerting's), as an interest-based stream would, but without dropping
//! what arrives while a consumer group does not exist yet.

use crate::{Bus, BusError, Signal};
use futures::TryStreamExt;
use std::collections::HashMap;
use std::time::Duration;
use weft_model::PartitionSet;
use weft_runtime::shutdown::CancellationToken;

/// Whether a consumer's filter `subject` (NATS wildcards `*` and `>` allowed) matches
/// `partition`'s subject.
fn matches(filter: &str, partition: &str) -> bool {
    let mut tokens = partition.split('.');
    for token in filter.split('.') {
        match (token, tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (token, Some(other)) if token == other => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

/// The highest stream sequence of each partition subject that every consumer reading it
/// has acknowledged, from the consumers' ack floors (a consumer without a filter reads
/// every subject). A partition no consumer reads, or one of whose readers has
/// acknowledged nothing, is left out.
fn acknowledged<'a>(
    consumers: impl IntoIterator<Item = (Vec<String>, u64)>,
    partitions: impl IntoIterator<Item = &'a str>,
) -> HashMap<&'a str, u64> {
    let mut floors: HashMap<&str, Option<u64>> =
        partitions.into_iter().map(|p| (p, None)).collect();
    for (filters, floor) in consumers {
        for (partition, seen) in floors.iter_mut() {
            if filters.is_empty() || filters.iter().any(|f| matches(f, partition)) {
                *seen = Some(seen.map_or(floor, |f| f.min(floor)));
            }
        }
    }
    floors
        .into_iter()
        .filter_map(|(subject, floor)| floor.filter(|f| *f > 0).map(|f| (subject, f)))
        .collect()
}

impl Bus {
    /// Purges the messages of `partitions` of `signal` that every consumer of them has
    /// acknowledged; returns how many were purged. Only partitions that `group` (the
    /// group that must see every message: the sampler) has a consumer of are trimmed, so
    /// nothing is purged that it has not read.
    pub async fn trim_acknowledged(
        &self,
        signal: Signal,
        group: &str,
        partitions: &PartitionSet,
    ) -> Result<u64, BusError> {
        let error = |e: &dyn std::fmt::Display| BusError::Stream(e.to_string());
        let stream = self
            .jetstream
            .get_stream(self.subjects.stream(signal))
            .await
            .map_err(|e| error(&e))?;
        let consumers: Vec<(String, Vec<String>, u64)> = stream
            .consumers()
            .map_ok(|info| {
                let mut subjects = info.config.filter_subjects.clone();
                if !info.config.filter_subject.is_empty() {
                    subjects.push(info.config.filter_subject.clone());
                }
                (info.name, subjects, info.ack_floor.stream_sequence)
            })
            .try_collect()
            .await
            .map_err(|e| error(&e))?;
        let subjects: Vec<String> = partitions
            .iter()
            .filter(|p| {
                let own = self.subjects.consumer(group, signal, *p);
                consumers.iter().any(|(name, _, _)| *name == own)
            })
            .map(|p| self.subjects.partition(signal, p))
            .collect();
        let consumers = consumers
            .into_iter()
            .map(|(_, subjects, floor)| (subjects, floor));
        let mut purged = 0;
        for (subject, floor) in acknowledged(consumers, subjects.iter().map(String::as_str)) {
            let answer = stream
                .purge()
                .filter(subject)
                .sequence(floor + 1)
                .await
                .map_err(|e| error(&e))?;
            purged += answer.purged;
        }
        self.metrics
            .trimmed
            .get_or_create(&crate::metrics::SignalLabels {
                signal: signal.as_str(),
            })
            .inc_by(purged);
        Ok(purged)
    }

    /// Trims `signals` on `partitions` (see [`Bus::trim_acknowledged`]) every `interval`
    /// until `shutdown`. A failed trim is logged and tried again next time: it only
    /// costs room.
    pub async fn trim_until(
        &self,
        signals: &[Signal],
        group: &str,
        partitions: &PartitionSet,
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
                if let Err(error) = self.trim_acknowledged(*signal, group, partitions).await {
                    tracing::warn!(%error, signal = signal.as_str(), "trimming acknowledged messages failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer(subjects: &[&str], floor: u64) -> (Vec<String>, u64) {
        (subjects.iter().map(|s| (*s).to_owned()).collect(), floor)
    }

    #[test]
    fn a_partition_is_trimmed_to_its_slowest_reader() {
        let floors = acknowledged(
            [
                consumer(&["w.spans.0"], 90),
                consumer(&["w.spans.0"], 70),
                consumer(&["w.spans.1"], 40),
                consumer(&["w.spans.2"], 0),
                consumer(&["w.spans.9"], 500),
            ],
            ["w.spans.0", "w.spans.1", "w.spans.2", "w.spans.3"],
        );
        // 2 has a reader that acknowledged nothing, 3 none at all: both are kept whole.
        assert_eq!(
            floors,
            HashMap::from([("w.spans.0", 70), ("w.spans.1", 40)])
        );
    }

    #[test]
    fn a_reader_of_many_partitions_holds_back_each() {
        let floors = acknowledged(
            [
                consumer(&["w.spans.0"], 90),
                consumer(&["w.spans.1"], 40),
                consumer(&["w.spans.*"], 60),
            ],
            ["w.spans.0", "w.spans.1"],
        );
        assert_eq!(
            floors,
            HashMap::from([("w.spans.0", 60), ("w.spans.1", 40)])
        );
        let whole_stream = acknowledged(
            [consumer(&["w.spans.0"], 90), consumer(&[], 0)],
            ["w.spans.0"],
        );
        assert!(whole_stream.is_empty());
        // Readers of other subjects (another stack's partitions) hold back nothing.
        let others = acknowledged(
            [consumer(&["w.spans.0"], 90), consumer(&["w.spans.7"], 0)],
            ["w.spans.0"],
        );
        assert_eq!(others, HashMap::from([("w.spans.0", 90)]));
    }

    #[test]
    fn filters_match_as_nats_does() {
        assert!(matches("w.spans.3", "w.spans.3"));
        assert!(!matches("w.spans.3", "w.spans.30"));
        assert!(matches("w.spans.*", "w.spans.3"));
        assert!(matches("w.>", "w.spans.3"));
        assert!(!matches("w.logs.*", "w.spans.3"));
        assert!(!matches("w.spans", "w.spans.3"));
        assert!(!matches("w.spans.3.x", "w.spans.3"));
    }
}

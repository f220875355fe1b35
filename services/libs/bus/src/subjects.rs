//! Subject and stream names. Every name carries the prefix so that stacks (and parallel
//! tests) sharing one NATS server never see each other's messages.

use std::fmt;
use weft_model::Partition;

/// A kind of telemetry the bus carries, each in its own stream partitioned by trace id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    Spans,
    Logs,
}

impl Signal {
    pub const ALL: [Signal; 2] = [Signal::Spans, Signal::Logs];

    /// The subject token and metric label of the signal.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Spans => "spans",
            Signal::Logs => "logs",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    pub fn new(prefix: &str) -> Self {
        Subjects {
            prefix: prefix.to_owned(),
        }
    }

    /// `<prefix>.<signal>.<partition>`: one tenant's batch of one partition.
    pub fn partition(&self, signal: Signal, partition: Partition) -> String {
        format!("{}.{signal}.{}", self.prefix, partition.0)
    }

    /// Every partition of a signal: the subjects of its stream.
    pub fn all_partitions(&self, signal: Signal) -> String {
        format!("{}.{signal}.*", self.prefix)
    }

    /// Stream names may not contain dots; the prefix is already restricted to
    /// letters, digits, `-` and `_`.
    pub fn stream(&self, signal: Signal) -> String {
        format!("{}_{}", self.prefix, signal.as_str().to_ascii_uppercase())
    }

    /// Where messages that can never be stored are kept for the operator:
    /// `<prefix>.deadletter.<signal>`, in one stream for every signal.
    pub fn dead_letter(&self, signal: Signal) -> String {
        format!("{}.deadletter.{signal}", self.prefix)
    }

    pub fn dead_letter_all(&self) -> String {
        format!("{}.deadletter.*", self.prefix)
    }

    pub fn dead_letter_stream(&self) -> String {
        format!("{}_DEADLETTER", self.prefix)
    }

    /// `<prefix>.control.<topic>`: announcements that refresh caches on every replica.
    pub fn control(&self, topic: &str) -> String {
        format!("{}.control.{topic}", self.prefix)
    }

    /// Durable consumer name of a consumer group for one partition of a signal. Span
    /// consumers keep the name they had before logs existed (`sampler-p3`), so an
    /// upgraded sampler resumes where it stopped instead of re-reading the stream.
    pub fn consumer(&self, group: &str, signal: Signal, partition: Partition) -> String {
        match signal {
            Signal::Spans => format!("{group}-p{}", partition.0),
            other => format!("{group}-{other}-p{}", partition.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_prefix() {
        let s = Subjects::new("t1");
        assert_eq!(s.partition(Signal::Spans, Partition(3)), "t1.spans.3");
        assert_eq!(s.partition(Signal::Logs, Partition(0)), "t1.logs.0");
        assert_eq!(s.all_partitions(Signal::Spans), "t1.spans.*");
        assert_eq!(s.stream(Signal::Spans), "t1_SPANS");
        assert_eq!(s.stream(Signal::Logs), "t1_LOGS");
        assert_eq!(
            s.consumer("sampler", Signal::Spans, Partition(3)),
            "sampler-p3"
        );
        assert_eq!(
            s.consumer("sampler", Signal::Logs, Partition(3)),
            "sampler-logs-p3"
        );
        assert_eq!(s.control("keys.revoked"), "t1.control.keys.revoked");
        assert_eq!(s.dead_letter(Signal::Spans), "t1.deadletter.spans");
        assert_eq!(s.dead_letter_stream(), "t1_DEADLETTER");
    }
}

//! Subject and stream names. Every name carries the prefix so that stacks (and parallel
//! tests) sharing one NATS server never see each other's messages.

use weft_model::Partition;

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

    pub fn spans(&self, partition: Partition) -> String {
        format!("{}.spans.{}", self.prefix, partition.0)
    }

    pub fn spans_all(&self) -> String {
        format!("{}.spans.*", self.prefix)
    }

    /// Stream names may not contain dots; the prefix is already restricted to
    /// letters, digits, `-` and `_`.
    pub fn spans_stream(&self) -> String {
        format!("{}_SPANS", self.prefix)
    }

    /// Announcements of revoked API keys; the payload is the key's hex digest.
    pub fn key_revocations(&self) -> String {
        format!("{}.control.keys.revoked", self.prefix)
    }

    /// Durable consumer name of the sampler for one partition.
    pub fn sampler_consumer(&self, partition: Partition) -> String {
        format!("sampler-p{}", partition.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_prefix() {
        let s = Subjects::new("t1");
        assert_eq!(s.spans(Partition(3)), "t1.spans.3");
        assert_eq!(s.spans_all(), "t1.spans.*");
        assert_eq!(s.spans_stream(), "t1_SPANS");
        assert_eq!(s.sampler_consumer(Partition(3)), "sampler-p3");
        assert_eq!(s.key_revocations(), "t1.control.keys.revoked");
    }
}

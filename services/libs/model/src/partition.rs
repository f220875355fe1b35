//! Stable partitioning by trace id: every span of a trace lands in the same partition, so
//! one sampler sees whole traces. The hash must never change between releases, or spans
//! of one trace written before and after an upgrade would be split.

use crate::TraceId;
use std::fmt;

/// One partition of the span and log streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition(pub u16);

impl Partition {
    /// FNV-1a over the 16 id bytes with a murmur3 finaliser so the low bits (the ones
    /// `%` keeps) depend on every byte; ids from some SDKs start with a timestamp, so the
    /// whole id is hashed rather than taking its first bytes.
    pub fn of(trace_id: &TraceId, partitions: u16) -> Partition {
        assert!(partitions > 0, "partition count must be positive");
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in trace_id.as_bytes() {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        hash ^= hash >> 33;
        Partition((hash % u64::from(partitions)) as u16)
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a partition list does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PartitionSetError {
    #[error("invalid partition {0:?} (expected a number, a range like 0-7, or all)")]
    Syntax(String),
    #[error("partition {partition} is out of range (there are {count} partitions)")]
    OutOfRange { partition: u16, count: u16 },
}

/// The partitions a sampler replica owns, parsed from `all` or a list like `0-3,8,10-11`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionSet(Vec<Partition>);

impl PartitionSet {
    pub fn all(count: u16) -> Self {
        PartitionSet((0..count).map(Partition).collect())
    }

    pub fn parse(spec: &str, count: u16) -> Result<Self, PartitionSetError> {
        if spec.trim() == "all" {
            return Ok(Self::all(count));
        }
        let number = |s: &str| {
            s.trim()
                .parse::<u16>()
                .map_err(|_| PartitionSetError::Syntax(spec.to_owned()))
        };
        let mut partitions = Vec::new();
        for part in spec.split(',') {
            let (first, last) = match part.split_once('-') {
                Some((a, b)) => (number(a)?, number(b)?),
                None => (number(part)?, number(part)?),
            };
            if first > last {
                return Err(PartitionSetError::Syntax(spec.to_owned()));
            }
            for partition in first..=last {
                if partition >= count {
                    return Err(PartitionSetError::OutOfRange { partition, count });
                }
                partitions.push(Partition(partition));
            }
        }
        partitions.sort();
        partitions.dedup();
        Ok(PartitionSet(partitions))
    }

    pub fn iter(&self) -> impl Iterator<Item = Partition> + '_ {
        self.0.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PINNED: u16 = 311;

    #[test]
    fn partition_is_stable_and_in_range() {
        let id: TraceId = "0af7651916cd43dd8448eb211c80319c".parse().unwrap();
        let p = Partition::of(&id, 16);
        assert_eq!(p, Partition::of(&id, 16));
        assert!(p.0 < 16);
        // Pinned: changing the hash would split traces across an upgrade.
        assert_eq!(Partition::of(&id, 1024), Partition(PINNED));
        let spread: std::collections::HashSet<_> = (1u8..=200)
            .map(|i| Partition::of(&TraceId::from_bytes(&[i; 16]).unwrap(), 16))
            .collect();
        assert_eq!(spread.len(), 16, "200 ids should touch every partition");
    }

    #[test]
    fn partition_sets_parse_ranges_lists_and_all() {
        let set = PartitionSet::parse("0-2,5,2", 8).unwrap();
        assert_eq!(
            set.iter().map(|p| p.0).collect::<Vec<_>>(),
            vec![0, 1, 2, 5]
        );
        assert_eq!(PartitionSet::parse("all", 4).unwrap().len(), 4);
        assert_eq!(
            PartitionSet::parse("9", 8),
            Err(PartitionSetError::OutOfRange {
                partition: 9,
                count: 8
            })
        );
        assert!(PartitionSet::parse("x", 8).is_err());
        assert!(PartitionSet::parse("3-1", 8).is_err());
    }
}

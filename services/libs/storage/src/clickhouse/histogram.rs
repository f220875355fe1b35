//! The duration histogram of the metrics tables: log-linear buckets (16 linear buckets in
//! every power of two of nanoseconds, as HDR histograms do), bucketed with integer
//! arithmetic only, and stored sparse: the numbers of the non-empty buckets and their
//! counts, as parallel arrays that ClickHouse sums bucket by bucket (`sumMap`).
//!
//! What must stay true: [`bucket`] never changes for a duration, because stored rows
//! keep its numbers. A bucket below 32 ns holds one value; above, bucket `b` of the power
//! of two `2^e` spans `2^(e-4)` nanoseconds and starts at least `16 · 2^(e-4)`, so the
//! middle of a bucket is within `1/32` (3.125 %) of every duration in it. A quantile read
//! from the histogram is the middle of the bucket holding the duration of that rank,
//! hence within 3.125 % of the exact quantile (nearest rank) of the durations recorded.

use std::collections::BTreeMap;

/// Linear buckets per power of two.
const SUB_BUCKETS: u64 = 16;
const SUB_BUCKET_BITS: u64 = 4;

/// The largest relative error of a quantile read from a histogram.
pub const MAX_RELATIVE_ERROR: f64 = 1.0 / (2.0 * SUB_BUCKETS as f64);

/// The bucket of a duration in nanoseconds: from 0 (0 ns) to 975 (`u64::MAX`).
pub fn bucket(duration_ns: u64) -> u16 {
    if duration_ns < SUB_BUCKETS {
        return duration_ns as u16;
    }
    // The power of two, at least 2^4, and the linear bucket within it.
    let power = 63 - u64::from(duration_ns.leading_zeros());
    let sub = (duration_ns >> (power - SUB_BUCKET_BITS)) - SUB_BUCKETS;
    (SUB_BUCKETS * (power - SUB_BUCKET_BITS + 1) + sub) as u16
}

/// The smallest and the largest duration of a bucket, in nanoseconds.
pub fn bounds(bucket: u16) -> (u64, u64) {
    let bucket = u64::from(bucket);
    if bucket < SUB_BUCKETS {
        return (bucket, bucket);
    }
    let shift = bucket / SUB_BUCKETS - 1;
    let low = (SUB_BUCKETS + bucket % SUB_BUCKETS) << shift;
    (low, low + ((1 << shift) - 1))
}

/// The value a bucket stands for: its middle.
pub fn midpoint(bucket: u16) -> u64 {
    let (low, high) = bounds(bucket);
    low + (high - low) / 2
}

/// Counts of durations per bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DurationHistogram {
    counts: BTreeMap<u16, u64>,
}

impl DurationHistogram {
    pub fn record(&mut self, duration_ns: u64) {
        *self.counts.entry(bucket(duration_ns)).or_default() += 1;
    }

    /// The histogram of stored parallel arrays (bucket numbers, counts).
    pub fn from_sparse(buckets: &[u16], counts: &[u64]) -> DurationHistogram {
        let mut histogram = DurationHistogram::default();
        histogram.add_sparse(buckets, counts);
        histogram
    }

    pub fn add_sparse(&mut self, buckets: &[u16], counts: &[u64]) {
        for (bucket, count) in buckets.iter().zip(counts) {
            *self.counts.entry(*bucket).or_default() += count;
        }
    }

    pub fn merge(&mut self, other: &DurationHistogram) {
        for (bucket, count) in &other.counts {
            *self.counts.entry(*bucket).or_default() += count;
        }
    }

    /// The non-empty buckets in ascending order and their counts, as stored.
    pub fn to_sparse(&self) -> (Vec<u16>, Vec<u64>) {
        self.counts.iter().map(|(b, c)| (*b, *c)).unzip()
    }

    pub fn count(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The `q`-quantile (0 < q ≤ 1) by nearest rank, in nanoseconds, within
    /// [`MAX_RELATIVE_ERROR`] of the exact one; `None` when nothing was recorded.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (bucket, count) in &self.counts {
            seen += count;
            if seen >= rank {
                return Some(midpoint(*bucket));
            }
        }
        unreachable!("the ranks end at the total count")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic spread of durations from nanoseconds to hours.
    fn durations() -> Vec<u64> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        (0..20_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // A log-uniform value: up to 2^44 ns (about 5 hours).
                let bits = state % 45;
                (state >> 20) % (1 << bits).max(1)
            })
            .collect()
    }

    #[test]
    fn buckets_tile_every_duration_without_gaps() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(u64::MAX), 975);
        assert_eq!(bounds(975).1, u64::MAX);
        for b in 0..975u16 {
            let (low, high) = bounds(b);
            assert!(low <= high);
            assert_eq!(
                high + 1,
                bounds(b + 1).0,
                "bucket {b} is followed by the next"
            );
            assert_eq!(bucket(low), b);
            assert_eq!(bucket(high), b);
        }
        // Pinned: stored rows keep these numbers.
        assert_eq!(bucket(31), 31);
        assert_eq!(bucket(1_000_000), 270);
        assert_eq!(bounds(270), (983_040, 1_015_807));
    }

    #[test]
    fn the_middle_of_a_bucket_is_within_the_bound_of_all_it_holds() {
        for b in 1..=975u16 {
            let (low, high) = bounds(b);
            let middle = midpoint(b) as f64;
            for value in [low, high] {
                let error = (middle - value as f64).abs() / value as f64;
                assert!(error <= MAX_RELATIVE_ERROR, "bucket {b}: {error}");
            }
        }
    }

    #[test]
    fn quantiles_are_within_the_bound_of_the_exact_ones() {
        let mut values = durations();
        let mut histogram = DurationHistogram::default();
        for value in &values {
            histogram.record(*value);
        }
        values.sort_unstable();
        for q in [0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let rank = ((q * values.len() as f64).ceil() as usize).max(1);
            let exact = values[rank - 1] as f64;
            let estimate = histogram.quantile(q).unwrap() as f64;
            let error = if exact == 0.0 {
                estimate
            } else {
                (estimate - exact).abs() / exact
            };
            assert!(error <= MAX_RELATIVE_ERROR, "q {q}: {estimate} for {exact}");
        }
        assert_eq!(DurationHistogram::default().quantile(0.5), None);
    }

    #[test]
    fn sparse_form_round_trips_and_merges_by_bucket() {
        let mut a = DurationHistogram::default();
        [5, 5, 1_000_000, 2_000_000_000]
            .into_iter()
            .for_each(|d| a.record(d));
        let (buckets, counts) = a.to_sparse();
        assert_eq!(buckets, [5, 270, 445]);
        assert_eq!(counts, [2, 1, 1]);
        assert_eq!(DurationHistogram::from_sparse(&buckets, &counts), a);
        let mut b = DurationHistogram::default();
        b.record(6);
        b.record(1_000_001);
        b.merge(&a);
        assert_eq!(b.to_sparse(), (vec![5, 6, 270, 445], vec![2, 1, 2, 1]));
        assert_eq!(b.count(), 6);
    }
}

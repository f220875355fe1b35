//! "What is different" (as Honeycomb's BubbleUp): which attribute values, of spans and of
//! their resources, are over-represented in the selected traces of a search (errors,
//! slow ones, a box of the scatter) against its other traces in the same window. The
//! counting happens in ClickHouse (`TenantTraces::attribute_difference`); here the values
//! are ranked by how much larger their share of the selected traces is than their share
//! of the others.
//!
//! A value is counted per trace: the share of the selected traces that have at least one
//! span carrying it. The selection is of traces, so counting spans would let one trace
//! with a thousand spans outweigh a thousand traces with one.

use serde::Serialize;
use weft_storage::clickhouse::{
    AttributeValues, ClickHouseError, DIFFERENCE_VALUES_PER_KEY, SelectionCounts, TenantTraces,
    TraceSearch, TraceSelection,
};

/// Keys never compared: ids unique to a span or trace and free text, whose values are
/// each on one trace and only cost memory. Other keys with more than
/// [`DIFFERENCE_VALUES_PER_KEY`] values in the window are left out as well (and named).
pub const IGNORED_KEYS: [&str; 16] = [
    "trace_id",
    "span_id",
    "trace.id",
    "span.id",
    "traceId",
    "spanId",
    "parent_span_id",
    "exception.stacktrace",
    "exception.message",
    "db.statement",
    "db.query.text",
    "http.url",
    "url.full",
    "url.query",
    "http.target",
    "process.command_line",
];

/// Values an answer lists at most.
pub const MAX_VALUES: usize = 50;

/// One attribute value and how often the two groups carry it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ValueDifference {
    pub key: String,
    pub value: String,
    pub selected_traces: u64,
    pub baseline_traces: u64,
    /// From 0 to 1: the share of the group's traces with a span carrying the value.
    pub selected_share: f64,
    pub baseline_share: f64,
    /// `selected_share - baseline_share`, what the ranking orders by.
    pub difference: f64,
}

/// The answer: the size of both groups, how many traces of each were read (a sample of
/// a large group, by trace-id hash; the values' counts are of these), the
/// over-represented values best first, and the keys left out for having too many values.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Difference {
    pub selected_traces: u64,
    pub baseline_traces: u64,
    pub sampled_selected_traces: u64,
    pub sampled_baseline_traces: u64,
    pub values: Vec<ValueDifference>,
    pub high_cardinality_keys: Vec<String>,
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 / whole as f64).min(1.0)
    }
}

/// Ranks the values of `keys` by how over-represented they are in the selection. The
/// empty key's empty value, which the read gives every span, counts the traces read of
/// each group: the shares' denominators.
pub fn rank(counts: SelectionCounts, mut keys: Vec<AttributeValues>) -> Difference {
    let sampled = keys
        .iter()
        .position(|key| key.key.is_empty())
        .map(|at| keys.remove(at))
        .and_then(|key| {
            let at = key.values.iter().position(String::is_empty)?;
            Some(SelectionCounts {
                selected: key.selected[at],
                baseline: key.baseline[at],
            })
        })
        .unwrap_or(counts);
    let mut values = Vec::new();
    let mut high_cardinality_keys = Vec::new();
    for key in keys {
        if key.distinct_values as usize > DIFFERENCE_VALUES_PER_KEY {
            high_cardinality_keys.push(key.key);
            continue;
        }
        for ((value, selected), baseline) in
            key.values.into_iter().zip(key.selected).zip(key.baseline)
        {
            let selected_share = share(selected, sampled.selected);
            let baseline_share = share(baseline, sampled.baseline);
            let difference = selected_share - baseline_share;
            if selected > 0 && difference > 0.0 {
                values.push(ValueDifference {
                    key: key.key.clone(),
                    value,
                    selected_traces: selected,
                    baseline_traces: baseline,
                    selected_share,
                    baseline_share,
                    difference,
                });
            }
        }
    }
    values.sort_by(|a, b| {
        b.difference
            .total_cmp(&a.difference)
            .then(b.selected_share.total_cmp(&a.selected_share))
            .then_with(|| (&a.key, &a.value).cmp(&(&b.key, &b.value)))
    });
    values.truncate(MAX_VALUES);
    Difference {
        selected_traces: counts.selected,
        baseline_traces: counts.baseline,
        sampled_selected_traces: sampled.selected,
        sampled_baseline_traces: sampled.baseline,
        values,
        high_cardinality_keys,
    }
}

/// Reads and ranks what is different about `selection` among the traces of `search`.
pub async fn read(
    store: &TenantTraces<'_>,
    search: &TraceSearch,
    selection: &TraceSelection,
) -> Result<Difference, ClickHouseError> {
    let (counts, keys) = store
        .attribute_difference(search, selection, &IGNORED_KEYS)
        .await?;
    Ok(rank(counts, keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, values: &[(&str, u64, u64)]) -> AttributeValues {
        AttributeValues {
            key: name.to_owned(),
            distinct_values: values.len() as u64,
            values: values.iter().map(|v| v.0.to_owned()).collect(),
            selected: values.iter().map(|v| v.1).collect(),
            baseline: values.iter().map(|v| v.2).collect(),
        }
    }

    #[test]
    fn values_rank_by_how_much_more_often_the_selection_has_them() {
        let counts = SelectionCounts {
            selected: 10,
            baseline: 90,
        };
        let ranked = rank(
            counts,
            vec![
                key(
                    "app.region",
                    &[("eu-slow", 10, 0), ("us", 0, 60), ("eu", 0, 30)],
                ),
                key("http.method", &[("GET", 10, 90)]),
                key("customer.tier", &[("gold", 6, 9), ("free", 4, 81)]),
            ],
        );
        let order: Vec<(&str, &str)> = ranked
            .values
            .iter()
            .map(|v| (v.key.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(
            order,
            [("app.region", "eu-slow"), ("customer.tier", "gold")],
            "values as common in both groups, or rarer in the selection, are not different"
        );
        assert_eq!(ranked.values[0].selected_share, 1.0);
        assert_eq!(ranked.values[1].baseline_share, 0.1);
        assert!((ranked.values[1].difference - 0.5).abs() < 1e-9);
        assert_eq!((ranked.selected_traces, ranked.baseline_traces), (10, 90));
    }

    #[test]
    fn shares_are_of_the_traces_read_when_a_group_was_sampled() {
        let counts = SelectionCounts {
            selected: 40,
            baseline: 400_000,
        };
        let ranked = rank(
            counts,
            vec![
                key("", &[("", 40, 10_000)]),
                key("app.region", &[("eu-slow", 40, 0), ("us", 0, 5_000)]),
            ],
        );
        assert_eq!(
            (
                ranked.sampled_selected_traces,
                ranked.sampled_baseline_traces
            ),
            (40, 10_000)
        );
        assert_eq!(ranked.baseline_traces, 400_000);
        assert_eq!(ranked.values.len(), 1, "the counting row is not a value");
        assert_eq!(ranked.values[0].selected_share, 1.0);
    }

    #[test]
    fn keys_with_too_many_values_are_named_not_ranked() {
        let mut ids = key("user.id", &[("u1", 5, 0)]);
        ids.distinct_values = DIFFERENCE_VALUES_PER_KEY as u64 + 1;
        let ranked = rank(
            SelectionCounts {
                selected: 5,
                baseline: 0,
            },
            vec![ids],
        );
        assert!(ranked.values.is_empty());
        assert_eq!(ranked.high_cardinality_keys, ["user.id"]);
    }
}

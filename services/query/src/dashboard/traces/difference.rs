//! The "what is different" page: for a search and a selection of its traces (errors,
//! slower than a threshold, a box of the scatter), the attribute values over-represented
//! in the selection against the search's other traces, ranked, each with bars of its share
//! in both groups and a link to the search narrowed to it.

use super::format;
use super::range;
use super::search::{self, Request};
use crate::difference::Difference;
use crate::params;
use weft_storage::clickhouse::{AttributeFilter, TraceSearch, TraceSelection};

/// One ranked value as the page shows it.
pub struct Row {
    pub key: String,
    pub value: String,
    /// Bar widths in percent, and the shares as text.
    pub selected_bar: String,
    pub baseline_bar: String,
    pub selected: String,
    pub baseline: String,
    pub selected_traces: u64,
    pub baseline_traces: u64,
    /// The difference in percentage points, signed.
    pub difference: String,
    /// The search narrowed to traces with this value.
    pub href: String,
}

/// What the page was asked: the search, the selection and the form's state.
#[derive(Debug)]
pub struct Asked {
    pub search: TraceSearch,
    pub selection: TraceSelection,
    /// The search's query string in the search page's terms (no selection, no cursor).
    pub search_query: String,
}

/// The selection's form as the page shows it again.
#[derive(Default)]
pub struct SelectionForm {
    pub kind: String,
    pub threshold: String,
    /// The region's parameters, kept as hidden fields while the region is selected.
    pub region: Vec<(String, String)>,
}

/// Reads the page's query: the search in the search page's terms (time range presets,
/// `datetime-local` times) and the selection.
pub fn parse(query: Option<&str>) -> (SelectionForm, String, Result<Asked, String>) {
    let (rest, given) = params::split_selection(query);
    let mut form = SelectionForm::default();
    for (key, value) in &given {
        match key.as_str() {
            "selection" => form.kind = value.clone(),
            "threshold" => form.threshold = value.clone(),
            _ if !value.is_empty() => form.region.push((key.clone(), value.clone())),
            _ => {}
        }
    }
    let search_query = search::without(Some(&rest), &["q", "selection"]).finish();
    let search = match search::parse(Some(&rest)) {
        (_, Request::Search(search)) => *search,
        (_, Request::Invalid(message)) => return (form, search_query, Err(message)),
        (_, Request::Jump(_)) => {
            return (
                form,
                search_query,
                Err("A trace id is not a search: remove q.".to_owned()),
            );
        }
    };
    let asked = params::selection(&given, &search)
        .map(|selection| Asked {
            search,
            selection,
            search_query: search_query.clone(),
        })
        .map_err(|error| range::sentence(&error.message));
    (form, search_query, asked)
}

/// The selection in words, completing "What is different about …".
pub fn describe(selection: &TraceSelection) -> String {
    match *selection {
        TraceSelection::Errors => "the traces with errors".to_owned(),
        TraceSelection::SlowerThan(ns) => format!("traces slower than {}", format::duration(ns)),
        TraceSelection::Region {
            start_unix_nano,
            end_unix_nano,
            min_duration_ns,
            max_duration_ns,
        } => {
            let mut text = format!(
                "traces started {}",
                range::describe(start_unix_nano, end_unix_nano)
            );
            match (min_duration_ns, max_duration_ns) {
                (0, u64::MAX) => {}
                (min, u64::MAX) => {
                    text.push_str(&format!(", slower than {}", format::duration(min)))
                }
                (0, max) => text.push_str(&format!(", faster than {}", format::duration(max))),
                (min, max) => text.push_str(&format!(
                    ", lasting {} to {}",
                    format::duration(min),
                    format::duration(max)
                )),
            }
            text
        }
    }
}

fn percent(share: f64) -> String {
    let pct = share * 100.0;
    if pct > 0.0 && pct < 1.0 {
        format!("{pct:.1}%")
    } else {
        format!("{pct:.0}%")
    }
}

/// The ranked values as rows, each linking to `search_query` narrowed to it.
pub fn rows(answer: &Difference, search_query: &str) -> Vec<Row> {
    answer
        .values
        .iter()
        .map(|v| {
            let mut href = form_urlencoded::Serializer::new(search_query.to_owned());
            href.append_pair(
                "attr",
                &params::attribute_text(&AttributeFilter::equals(&v.key, &v.value)),
            );
            Row {
                key: v.key.clone(),
                value: v.value.clone(),
                selected_bar: format!("{:.1}", v.selected_share * 100.0),
                baseline_bar: format!("{:.1}", v.baseline_share * 100.0),
                selected: percent(v.selected_share),
                baseline: percent(v.baseline_share),
                selected_traces: v.selected_traces,
                baseline_traces: v.baseline_traces,
                difference: format!("+{:.0}", v.difference * 100.0),
                href: format!("/traces?{}", href.finish()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::difference::ValueDifference;

    #[test]
    fn the_page_reads_the_search_pages_terms_and_the_selection() {
        let (form, query, asked) = parse(Some(
            "lookback=custom&start=2026-01-01T10:00&end=2026-01-01T11:00&service=cart&error=on&selection=slow&threshold=1.5s&cursor=x",
        ));
        let asked = asked.unwrap();
        assert_eq!(asked.search.service.as_deref(), Some("cart"));
        assert!(asked.search.errors_only);
        assert_eq!(asked.selection, TraceSelection::SlowerThan(1_500_000_000));
        assert_eq!(
            (form.kind.as_str(), form.threshold.as_str()),
            ("slow", "1.5s")
        );
        assert_eq!(
            query,
            "lookback=custom&start=2026-01-01T10%3A00&end=2026-01-01T11%3A00&service=cart&error=on"
        );
        assert_eq!(
            describe(&asked.selection),
            "traces slower than 1.5s",
            "in words"
        );
        let (_, _, missing) = parse(Some("lookback=1h"));
        assert!(missing.unwrap_err().starts_with("Missing selection"));
    }

    #[test]
    fn rows_link_to_the_search_narrowed_to_their_value() {
        let answer = Difference {
            selected_traces: 4,
            baseline_traces: 96,
            sampled_selected_traces: 4,
            sampled_baseline_traces: 96,
            values: vec![ValueDifference {
                key: "app.region".into(),
                value: "eu slow".into(),
                selected_traces: 4,
                baseline_traces: 0,
                selected_share: 1.0,
                baseline_share: 0.004,
                difference: 0.996,
            }],
            high_cardinality_keys: vec![],
        };
        let rows = rows(&answer, "lookback=1h&service=cart");
        assert_eq!(
            rows[0].href,
            "/traces?lookback=1h&service=cart&attr=app.region%3Deu+slow"
        );
        assert_eq!(
            (rows[0].selected.as_str(), rows[0].baseline.as_str()),
            ("100%", "0.4%")
        );
        assert_eq!(rows[0].difference, "+100");
    }
}

//! The query service's metric names and families, and the middleware that times every
//! request by its route.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use std::time::Instant;
use weft_runtime::metrics::Registry;

pub const REQUEST_SECONDS: &str = "weft_query_request_seconds";

/// The route is the matched pattern (`/api/v1/traces/{trace_id}`), never the raw path,
/// so the label set stays small.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

fn request_buckets() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.000_5, 2.0, 16))
}

#[derive(Clone)]
pub struct QueryMetrics {
    pub request_seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl Default for QueryMetrics {
    fn default() -> Self {
        QueryMetrics {
            request_seconds: Family::new_with_constructor(request_buckets),
        }
    }
}

impl QueryMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            REQUEST_SECONDS,
            "Time to answer a dashboard or API request, by route and status",
            self.request_seconds.clone(),
        );
    }
}

/// Times each request under its matched route (`unmatched` for paths no route knows).
pub async fn time_requests(
    State(metrics): State<QueryMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .request_seconds
        .get_or_create(&RouteLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .observe(started.elapsed().as_secs_f64());
    response
}

//! Security headers on every response of the query service, set once for the dashboard,
//! the JSON API and the health endpoints alike: pages load only Weft's own scripts,
//! styles and images, are never framed, sniffed or sent as a referrer elsewhere, and no
//! response is stored by a browser or proxy (pages show keys and invitation links once).
//! A handler that sets one of these headers itself keeps its own (the stylesheet may be
//! cached).

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// What a page may load: only Weft's own resources; inline styles (the waterfall's bar
/// positions) but no inline scripts; no framing, no `<base>`, forms only to Weft.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

const HEADERS: [(HeaderName, &str); 5] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "same-origin"),
    (header::CACHE_CONTROL, "no-store"),
];

pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in HEADERS {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

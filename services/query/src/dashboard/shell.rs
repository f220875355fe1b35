//! What every page shares beyond its layout: the favicon, the header's script, and the
//! answer to a path no route has, an HTML page (in the header of the signed-in user, when there is one) or,
//! under `/api/`, the JSON error the API answers everything with.

use super::DashboardState;
use super::extract::SignedIn;
use super::render::{Layout, render};
use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;
use weft_runtime::{ApiError, ErrorKind};

pub fn routes() -> Router<Arc<DashboardState>> {
    Router::new()
        .route("/static/favicon.svg", get(favicon))
        .route("/static/weft.js", get(script))
}

/// The header's enhancement (the organisation switcher switches on choosing).
async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../../../frontend/static/weft.js"),
    )
}

/// The icon never changes between releases of the same name, so browsers keep it a year.
async fn favicon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        include_str!("../../../../frontend/static/favicon.svg"),
    )
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFoundPage {
    layout: Layout,
    path: String,
}

/// The fallback of the whole router.
pub async fn not_found(State(state): State<Arc<DashboardState>>, mut parts: Parts) -> Response {
    let path = parts.uri.path().to_owned();
    if path == "/api" || path.starts_with("/api/") {
        return ApiError::new(ErrorKind::NotFound, format!("no such endpoint: {path}"))
            .into_response();
    }
    // A visitor without a usable session sees the page without the account header.
    let layout = match SignedIn::from_request_parts(&mut parts, &state).await {
        Ok(user) => user.layout(&state),
        Err(_) => Layout::anonymous(),
    };
    render(StatusCode::NOT_FOUND, &NotFoundPage { layout, path })
}

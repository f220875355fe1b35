//! The set-up page at `/`: how to point an OpenTelemetry SDK at Weft.

use super::DashboardState;
use super::extract::SignedIn;
use super::render::{Layout, render};
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use std::sync::Arc;

pub fn routes() -> Router<Arc<DashboardState>> {
    Router::new().route("/", get(setup_page))
}

#[derive(Template)]
#[template(path = "setup.html")]
pub(super) struct SetupPage {
    layout: Layout,
    new_key: Option<String>,
    key_text: String,
    http_endpoint: String,
    grpc_endpoint: String,
}

pub(super) fn setup(state: &DashboardState, layout: Layout, new_key: Option<String>) -> SetupPage {
    SetupPage {
        layout,
        key_text: new_key
            .clone()
            .unwrap_or_else(|| "YOUR_INGEST_KEY".to_owned()),
        new_key,
        http_endpoint: state.ingest_http_url.clone(),
        grpc_endpoint: state.ingest_grpc_url.clone(),
    }
}

async fn setup_page(State(state): State<Arc<DashboardState>>, user: SignedIn) -> Response {
    render(StatusCode::OK, &setup(&state, user.layout(&state), None))
}

//! Rendering pages: askama templates with the navigation bar's [`Layout`], and the error
//! page that [`DashboardError`](super::error::DashboardError) shows.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// An organisation in the switcher of the navigation bar.
pub struct OrganisationChoice {
    pub id: uuid::Uuid,
    pub name: String,
    pub current: bool,
}

/// The navigation bar's view of the session.
pub struct Layout {
    pub signed_in: bool,
    pub organisation: String,
    pub role: String,
    pub csrf: String,
    /// Every organisation of the user, when there is more than one to switch between.
    pub organisations: Vec<OrganisationChoice>,
}

impl Layout {
    pub fn anonymous() -> Self {
        Layout {
            signed_in: false,
            organisation: String::new(),
            role: String::new(),
            csrf: String::new(),
            organisations: Vec::new(),
        }
    }
}

pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    title: &'a str,
    message: &'a str,
}

pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(
        status,
        &ErrorPage {
            layout: Layout::anonymous(),
            title,
            message,
        },
    )
}

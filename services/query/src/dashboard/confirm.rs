//! The confirmation step of an action that cannot be undone (revoking a key, removing a
//! member): the list links to a page that says what will happen and holds the form that
//! does it, so it works without JavaScript and one stray click changes nothing.

use super::render::{Layout, render};
use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage<'a> {
    layout: Layout,
    title: &'a str,
    message: &'a str,
    /// Where the form posts.
    action: &'a str,
    button: &'a str,
    /// Where "Cancel" goes.
    back: &'a str,
}

/// The confirmation page of the action that posts to `action`.
pub fn confirm_page(
    layout: Layout,
    title: &str,
    message: &str,
    action: &str,
    button: &str,
    back: &str,
) -> Response {
    render(
        StatusCode::OK,
        &ConfirmPage {
            layout,
            title,
            message,
            action,
            button,
            back,
        },
    )
}

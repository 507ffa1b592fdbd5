//! The console's one error type and its one mapping to a page and status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

/// Everything a console page or action can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No session (or an expired one): the sign-in page.
    #[error("sign in first")]
    SignInRequired,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, title) = match &self {
            ConsoleError::SignInRequired => return Redirect::to("/console/login").into_response(),
            ConsoleError::Forbidden(_) => (StatusCode::FORBIDDEN, "Not allowed"),
            ConsoleError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
            ConsoleError::BadRequest(_) => (StatusCode::BAD_REQUEST, "Bad request"),
            ConsoleError::Internal(e) => {
                tracing::error!("console: {e:#}");
                (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong")
            }
        };
        let detail = match &self {
            ConsoleError::Internal(_) => "the host could not answer; its log says why".to_owned(),
            other => other.to_string(),
        };
        let body = super::layout::bare(
            title,
            html! {
                main.narrow {
                    h1 { (title) }
                    p.error { (detail) }
                    p { a href="/console/invocations" { "Back to the console" } }
                }
            },
        );
        (status, body).into_response()
    }
}

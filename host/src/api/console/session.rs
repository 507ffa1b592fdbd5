//! Console sign-in: a key exchanged once for a session cookie, the viewer
//! (operator or one tenant) each page is drawn for, and the token that
//! guards every state-changing form against cross-site requests.
//!
//! The key travels only in the sign-in form's body; the browser keeps a
//! random session token (HttpOnly, SameSite=Strict, scoped to /console),
//! never the key. Sessions live in this host's memory: a restart, or
//! another host of a fleet, asks for the key again.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use sha2::{Digest, Sha256};

use super::error::ConsoleError;
use super::page;
use super::viewer::{Console, Viewer, LIFETIME};
use crate::api::AppState;

const COOKIE: &str = "bookhost_console";

fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

impl FromRequestParts<AppState> for Console {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ConsoleError> {
        let token = session_token(&parts.headers).ok_or(ConsoleError::SignInRequired)?;
        let session = state
            .console
            .find(token)
            .ok_or(ConsoleError::SignInRequired)?;
        // A tenant's session lasts only as long as its key: one indexed
        // lookup per page, so a revoked key signs the console out at once.
        if let (Viewer::Tenant(tenant), Some(digest)) = (session.viewer, &session.key_digest) {
            let current = crate::db::keys::tenant_of_digest(state.host.pool(), digest).await?;
            if current != Some(tenant) {
                state.console.close(token);
                return Err(ConsoleError::SignInRequired);
            }
        }
        Ok(Console {
            viewer: session.viewer,
            csrf: session.csrf,
        })
    }
}

/// A POST from another site is refused before anything reads its form:
/// browsers send `Origin` on every cross-origin POST (and SameSite=Strict
/// keeps the cookie off it besides). The console's own host is the `Host`
/// header, or `X-Forwarded-Host` behind a proxy that rewrites `Host` (a
/// form of another site cannot set that header).
pub async fn same_origin(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.method() == axum::http::Method::POST {
        let headers = request.headers();
        let named = |name: &str| headers.get(name).and_then(|h| h.to_str().ok());
        if let Some(origin) = named("origin") {
            let origin_host = origin.split_once("://").map(|(_, rest)| rest);
            let ours = [named("host"), named("x-forwarded-host")];
            if origin_host.is_none() || !ours.contains(&origin_host) {
                return ConsoleError::Forbidden(
                    "a form of another site cannot act on the console".into(),
                )
                .into_response();
            }
        }
    }
    next.run(request).await
}

/// The sign-in page.
pub async fn sign_in_page() -> Response {
    page::sign_in(None).into_response()
}

#[derive(serde::Deserialize)]
pub struct SignIn {
    key: String,
}

/// Exchange a key for a session: the operator key, or a tenant's API key.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<SignIn>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ConsoleError> {
    let Ok(Form(SignIn { key })) = form else {
        return Ok((StatusCode::BAD_REQUEST, page::sign_in(Some("enter a key"))).into_response());
    };
    let key = key.trim();
    let operator = state
        .config
        .operator_key
        .as_deref()
        .is_some_and(|expected| Sha256::digest(expected) == Sha256::digest(key));
    let key_digest = Sha256::digest(key.as_bytes()).to_vec();
    let viewer = if operator {
        Some(Viewer::Operator)
    } else if key.is_empty() {
        None
    } else {
        crate::db::keys::tenant_of_digest(state.host.pool(), &key_digest)
            .await?
            .map(Viewer::Tenant)
    };
    let Some(viewer) = viewer else {
        return Ok((
            StatusCode::UNAUTHORIZED,
            page::sign_in(Some("unknown or revoked key")),
        )
            .into_response());
    };
    let token = state
        .console
        .open(viewer, (!viewer.is_operator()).then_some(key_digest));
    // Secure when the browser reached the console over TLS (a proxy in
    // front); plain HTTP on a developer's machine could not keep it.
    let secure = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .is_some_and(|o| o.starts_with("https://"))
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|p| p.as_bytes() == b"https");
    let cookie = format!(
        "{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{}",
        LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    let mut response = Redirect::to("/console/invocations").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("cookie is ASCII"),
    );
    Ok(response)
}

#[derive(serde::Deserialize)]
pub struct SignOut {
    #[serde(default)]
    csrf: String,
}

/// End the session (a POST with the session's token, like every action).
pub async fn sign_out(
    State(state): State<AppState>,
    console: Console,
    headers: HeaderMap,
    Form(form): Form<SignOut>,
) -> Result<Response, ConsoleError> {
    console.check_csrf(&form.csrf)?;
    if let Some(token) = session_token(&headers) {
        state.console.close(token);
    }
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "bookhost_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; bookhost_console=abc; b=2"),
        );
        assert_eq!(session_token(&headers), Some("abc"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("bookhost_consolex=abc"),
        );
        assert_eq!(session_token(&headers), None);
    }
}

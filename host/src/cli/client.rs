//! A small client of a running server's HTTP API, for the commands that
//! manage executors, invoke and list tools.

use anyhow::Context as _;

use super::args::ServerArgs;

/// A small HTTP client for the server's API.
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    pub fn new(server: &ServerArgs) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder().build()?,
            base: server.server.trim_end_matches('/').to_owned(),
            key: server.key.clone(),
        })
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// Send, print the body (pretty JSON when it is JSON) and return the status.
    pub async fn print(&self, request: reqwest::RequestBuilder) -> anyhow::Result<u16> {
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = response.status().as_u16();
        let body = response.bytes().await?;
        let text = match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(json) => serde_json::to_string_pretty(&json)?,
            Err(_) => String::from_utf8_lossy(&body).into_owned(),
        };
        if (200..300).contains(&status) {
            println!("{text}");
        } else {
            eprintln!("HTTP {status}");
            println!("{text}");
        }
        Ok(status)
    }
}

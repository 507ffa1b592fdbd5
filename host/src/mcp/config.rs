//! Who may reach the MCP endpoint: the browser origins and the hosts it serves.

/// The endpoint's settings.
#[derive(Debug, Clone)]
pub struct McpConfig {
    /// Origins a browser page may call from (`scheme://host:port`, `:*` for
    /// any port). A request without `Origin` is not a browser's and passes;
    /// one from another origin is refused `403` before its key is looked at.
    pub allowed_origins: Vec<String>,
    /// `Host` header values served (against DNS rebinding; a name without a
    /// port matches any port). Empty: every host.
    pub allowed_hosts: Vec<String>,
}

impl Default for McpConfig {
    /// Loopback only: a deployment names its own origins and hosts.
    fn default() -> Self {
        Self {
            allowed_origins: ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
                .map(String::from)
                .to_vec(),
            allowed_hosts: ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec(),
        }
    }
}

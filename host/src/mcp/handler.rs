//! The MCP server handler: one per request (the SDK makes it from a clone),
//! reading its caller from the request the guard admitted.

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig, SubscriptionFilter,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::Value;

use super::changes::ToolChanges;
use super::guard::Caller;
use super::{resources, tools};
use crate::invocations::{Invocations, Mode};

/// What every MCP request is served with.
#[derive(Clone)]
pub struct McpHandler {
    invocations: Invocations,
    changes: ToolChanges,
}

impl McpHandler {
    pub fn new(invocations: Invocations, changes: ToolChanges) -> Self {
        Self {
            invocations,
            changes,
        }
    }
}

/// The request's HTTP parts (headers, and what the guard added).
fn parts(ctx: &RequestContext<RoleServer>) -> Option<&axum::http::request::Parts> {
    ctx.extensions.get::<axum::http::request::Parts>()
}

/// Who is calling: set by the guard for every request it lets through.
fn caller(ctx: &RequestContext<RoleServer>) -> Result<Caller, ErrorData> {
    parts(ctx)
        .and_then(|parts| parts.extensions.get::<Caller>())
        .cloned()
        .ok_or_else(|| ErrorData::internal_error("the request has no authenticated caller", None))
}

/// A call's Idempotency-Key: `_meta["io.bookhost/idempotency-key"]`, or the
/// `Idempotency-Key` header; 1 to 255 visible ASCII characters, as over HTTP.
fn idempotency_key(ctx: &RequestContext<RoleServer>) -> Result<Option<String>, ErrorData> {
    let from_meta = ctx
        .meta
        .get(tools::META_IDEMPOTENCY_KEY)
        .map(|key| key.as_str());
    let from_header = parts(ctx)
        .and_then(|parts| parts.headers.get("idempotency-key"))
        .map(|key| key.to_str().ok());
    let key = match (from_meta, from_header) {
        (Some(key), _) => key,
        (None, Some(key)) => key,
        (None, None) => return Ok(None),
    };
    key.filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| (b' '..=b'~').contains(&b)))
        .map(|k| Some(k.to_owned()))
        .ok_or_else(|| {
            ErrorData::invalid_params(
                "an idempotency key is a string of 1 to 255 visible ASCII characters",
                None,
            )
        })
}

impl ServerHandler for McpHandler {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_resources()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("bookhost", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Tools are this business's actions, each run in one transaction. A tool's \
                 readOnlyHint is a guarantee here: the host refuses writes to a tool granted \
                 none. To show a change before making it, call the tool with _meta \
                 {\"io.bookhost/propose\": true}, then confirm_proposal with the proposal_id. \
                 Give retried calls the same _meta \"io.bookhost/idempotency-key\".",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let caller = caller(&ctx)?;
        let active = crate::db::reads::tools(self.invocations.host().pool(), caller.tenant)
            .await
            .map_err(|e| {
                tracing::error!("listing MCP tools: {e:#}");
                ErrorData::internal_error("the host failed; retry later", None)
            })?;
        let mut listed: Vec<_> = active
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(tools::executor_tool)
            .collect();
        listed.push(tools::confirm_tool());
        Ok(ListToolsResult::with_all_items(listed))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = caller(&ctx)?;
        let invocations = &self.invocations;
        let input = Value::Object(request.arguments.unwrap_or_default());
        let answered = if request.name == tools::CONFIRM_PROPOSAL {
            let id = input["proposal_id"]
                .as_str()
                .and_then(|id| uuid::Uuid::parse_str(id).ok())
                .ok_or_else(|| {
                    ErrorData::invalid_params("proposal_id must be a proposal's id (a UUID)", None)
                })?;
            invocations.confirm(caller.tenant, id).await
        } else {
            let mode = match ctx.meta.get(tools::META_PROPOSE) {
                Some(Value::Bool(true)) => Mode::Propose,
                None | Some(Value::Bool(false)) => Mode::Run,
                Some(_) => {
                    return Err(ErrorData::invalid_params(
                        format!("_meta {:?} must be true or false", tools::META_PROPOSE),
                        None,
                    ))
                }
            };
            let key = idempotency_key(&ctx)?;
            let name = &request.name;
            let run = async {
                // Looked up with the key already, unless the body named
                // another tool than the one the SDK parsed (it cannot).
                let active = match caller.tool {
                    Some((tool, active)) if tool == *name => active,
                    _ => invocations.active(caller.tenant, name).await?,
                };
                let target = invocations.target(caller.tenant, name, active).await?;
                invocations
                    .invoke(caller.tenant, &target, input, mode, key)
                    .await
            };
            run.await
        };
        let result = match answered {
            Ok(answer) => tools::answered(&answer),
            Err(error) => tools::failed(error),
        }?;
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        caller(&ctx)?;
        Ok(ListResourcesResult::with_all_items(resources::list()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let caller = caller(&ctx)?;
        let pool = self.invocations.host().pool();
        Ok(resources::read(pool, caller.tenant, &request.uri)
            .await?
            .into())
    }

    /// Clients of the 2026-07-28 revision learn of tool list changes on a
    /// `subscriptions/listen` stream; earlier clients list tools again.
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(
            SubscriptionFilter::builder()
                .tools_list_changed()
                .build()
                .intersection(requested),
        )
    }

    async fn listen(&self, ctx: SubscriptionContext) -> Result<(), ErrorData> {
        let caller = caller(ctx.request_context())?;
        let mut changes = self.changes.subscribe();
        loop {
            tokio::select! {
                () = ctx.cancelled() => return Ok(()),
                change = changes.recv() => match change {
                    Ok(tenant) if tenant != caller.tenant => {}
                    // A tenant's change, or so many that some were missed:
                    // either way the list may have changed.
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        if ctx.sink().notify_tool_list_changed().await.is_err() {
                            return Ok(());
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
                },
            }
        }
    }
}

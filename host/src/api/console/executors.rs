//! Executors: every version with its upload time and digest, which one is
//! active, what each asked for and was granted or denied; the operator
//! approves or denies a version pending approval, and a version can be
//! made active again (rollback).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use maud::{html, Markup};

use super::error::ConsoleError;
use super::page::{self, outcome, short_digest, short_id, time, Section};
use super::viewer::Console;
use crate::api::AppState;
use crate::db::executors::{self, RollbackError};
use crate::TenantId;

/// Every executor the viewer may see.
pub async fn list(State(state): State<AppState>, console: Console) -> Result<Markup, ConsoleError> {
    let found = executors::overview(state.host.pool(), console.viewer.scope()).await?;
    let body = html! {
        @if found.is_empty() { p.empty { "No executors uploaded yet." } }
        @else {
            table.list {
                thead { tr {
                    th { "Tenant" } th { "Executor" } th { "Active version" } th { "Activated" }
                    th.num { "Versions" } th.num { "Pending approval" }
                } }
                tbody {
                    @for e in &found {
                        tr {
                            td title=(e.tenant_id) { (short_id(e.tenant_id)) }
                            td { a href=(format!("/console/executors/{}/{}", e.tenant_id, e.name)) { (e.name) } }
                            td { code title=(e.active_digest) { (short_digest(&e.active_digest)) } }
                            td { (time(e.updated_at)) }
                            td.num { (e.versions) }
                            td.num { @if e.pending > 0 { span.chip.warn { (e.pending) } } @else { "0" } }
                        }
                    }
                }
            }
        }
    };
    Ok(page::shell(&console, Section::Executors, "Executors", body))
}

fn parse_tenant(console: &Console, tenant: &str, name: &str) -> Result<TenantId, ConsoleError> {
    let not_found = || ConsoleError::NotFound(format!("no executor {name:?}"));
    let tenant = TenantId(tenant.parse().map_err(|_| not_found())?);
    if console.viewer.sees(tenant) {
        Ok(tenant)
    } else {
        Err(not_found())
    }
}

/// One executor's versions and grants, with the actions the viewer may take.
pub async fn show(
    State(state): State<AppState>,
    console: Console,
    Path((tenant_text, name)): Path<(String, String)>,
) -> Result<Markup, ConsoleError> {
    let tenant = parse_tenant(&console, &tenant_text, &name)?;
    let versions = executors::version_grants(state.host.pool(), tenant, &name).await?;
    if versions.is_empty() {
        return Err(ConsoleError::NotFound(format!("no executor {name:?}")));
    }
    let policy = &state.config.grant_policy;
    let action = |verb: &str| format!("/console/executors/{}/{}/{verb}", tenant.0, name);
    let body = html! {
        p { "Tenant " code { (tenant.0) } ". Grant policy: " code { (format!("{:?}", policy.mode)) } "." }
        table.list.versions {
            thead { tr {
                th { "Version (SHA-256)" } th { "Uploaded" } th.num { "Size" } th { "Grant" }
                th { "Requested" } th { "Granted" } th { "Denied" } th { "Actions" }
            } }
            tbody {
                @for v in &versions {
                    @let denied = denied_of(policy, &v.requested, &v.granted, &v.status);
                    tr data-version=(v.digest) data-status=(v.status) {
                        td { code title=(v.digest) { (short_digest(&v.digest)) }
                             @if v.active { " " span.chip.good { "active" } } }
                        td { (time(v.uploaded_at)) }
                        td.num { (format!("{:.1} MB", v.size_bytes as f64 / 1e6)) }
                        td { (outcome(&v.status)) }
                        td { (list_of(&v.requested)) }
                        td { (list_of(&v.granted)) }
                        td { (list_of(&denied)) }
                        td.actions {
                            @if console.viewer.is_operator() && v.status == "pending-approval" {
                                (button(&console, &action("approve"), &v.digest, "Approve"))
                                (button(&console, &action("deny"), &v.digest, "Deny"))
                            }
                            @if !v.active {
                                (button(&console, &action("activate"), &v.digest, "Make active"))
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page::shell(
        &console,
        Section::Executors,
        &format!("Executor {name}"),
        body,
    ))
}

/// What a version does not get: for one pending approval, what the policy
/// would still withhold; for a denied one, everything.
fn denied_of(
    policy: &crate::capabilities::grant::GrantPolicy,
    requested: &[String],
    granted: &[String],
    status: &str,
) -> Vec<String> {
    match status {
        "pending-approval" => crate::capabilities::grant::parse_all(requested)
            .map(|r| policy.decide(&r).denied)
            .unwrap_or_default(),
        "denied" => requested.to_vec(),
        _ => requested
            .iter()
            .filter(|c| !granted.contains(c))
            .cloned()
            .collect(),
    }
}

fn list_of(capabilities: &[String]) -> Markup {
    html! {
        @if capabilities.is_empty() { span.none { "—" } }
        @for c in capabilities { code.cap { (c) } " " }
    }
}

fn button(console: &Console, action: &str, version: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            input type="hidden" name="csrf" value=(console.csrf);
            input type="hidden" name="version" value=(version);
            button type="submit" data-action=(label.to_lowercase().replace(' ', "-")) { (label) }
        }
    }
}

/// Back to the executor's page once an action is done.
fn back_to(tenant: TenantId, name: &str) -> Redirect {
    Redirect::to(&format!("/console/executors/{}/{name}", tenant.0))
}

fn not_pending(version: &str, name: &str) -> ConsoleError {
    ConsoleError::BadRequest(format!(
        "version {version} of {name:?} is not pending approval"
    ))
}

#[derive(serde::Deserialize)]
pub struct VersionAction {
    #[serde(default)]
    csrf: String,
    version: String,
}

/// Grant a pending version what it asked for, less the policy's deny list
/// (operator).
pub async fn approve(
    State(state): State<AppState>,
    console: Console,
    Path((tenant, name)): Path<(String, String)>,
    Form(form): Form<VersionAction>,
) -> Result<impl IntoResponse, ConsoleError> {
    console.check_csrf(&form.csrf)?;
    console.operator_only()?;
    let tenant = parse_tenant(&console, &tenant, &name)?;
    let pool = state.host.pool();
    let (version, decision) = executors::grant(pool, tenant, &name, Some(&form.version))
        .await?
        .ok_or_else(|| {
            ConsoleError::NotFound(format!("no version {} of {name:?}", form.version))
        })?;
    let requested = crate::capabilities::grant::parse_all(&decision.requested)
        .map_err(|e| anyhow::anyhow!("stored capabilities: {e}"))?;
    let granted = state.config.grant_policy.approve(&requested);
    if !executors::approve(
        pool,
        tenant,
        &name,
        &version,
        &granted,
        Some("pending-approval"),
    )
    .await?
    {
        return Err(not_pending(&version, &name));
    }
    tracing::info!(tenant = %tenant.0, executor = %name, %version, "console: version approved");
    Ok(back_to(tenant, &name))
}

/// Refuse a version pending approval (operator): it keeps no capability.
pub async fn deny(
    State(state): State<AppState>,
    console: Console,
    Path((tenant, name)): Path<(String, String)>,
    Form(form): Form<VersionAction>,
) -> Result<impl IntoResponse, ConsoleError> {
    console.check_csrf(&form.csrf)?;
    console.operator_only()?;
    let tenant = parse_tenant(&console, &tenant, &name)?;
    if !executors::deny(state.host.pool(), tenant, &name, &form.version).await? {
        return Err(not_pending(&form.version, &name));
    }
    tracing::info!(tenant = %tenant.0, executor = %name, version = %form.version, "console: version denied");
    Ok(back_to(tenant, &name))
}

/// Make a stored version the active one again (the operator, or the
/// executor's own tenant, as `POST /v1/executors/{name}/rollback`).
pub async fn activate(
    State(state): State<AppState>,
    console: Console,
    Path((tenant, name)): Path<(String, String)>,
    Form(form): Form<VersionAction>,
) -> Result<impl IntoResponse, ConsoleError> {
    console.check_csrf(&form.csrf)?;
    let tenant = parse_tenant(&console, &tenant, &name)?;
    match executors::rollback(state.host.pool(), tenant, &name, Some(&form.version)).await {
        Ok((from, to)) => {
            tracing::info!(tenant = %tenant.0, executor = %name, %from, %to, "console: version activated");
            Ok(back_to(tenant, &name))
        }
        Err(RollbackError::Database(e)) => Err(e.into()),
        Err(e) => Err(ConsoleError::NotFound(e.to_string())),
    }
}

//! Audit integrity: each tenant's chain head and how far the last
//! verification found it holding; run a verification and see the first
//! broken link; download a checkpoint of the heads.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use maud::{html, Markup};

use super::error::ConsoleError;
use super::page::{self, short_id, time, Section};
use super::viewer::{tenant_field, Console};
use crate::api::AppState;
use crate::db::audit;
use crate::TenantId;

pub async fn page(State(state): State<AppState>, console: Console) -> Result<Markup, ConsoleError> {
    let chains = audit::chains(state.host.pool(), console.viewer.scope()).await?;
    let body = html! {
        p {
            "Each tenant's audit records are linked into a hash chain. A verification walks the chain and names the first link that does not hold. "
            "Keep checkpoints where the database's writers cannot reach, to detect a rewritten or truncated chain."
        }
        div.toolbar {
            form.inline method="post" action="/console/audit/verify" {
                input type="hidden" name="csrf" value=(console.csrf);
                button type="submit" data-action="verify-all" { "Verify " @if console.viewer.is_operator() { "every chain" } @else { "the chain" } }
            }
            a.button href="/console/audit/checkpoint" download { "Download checkpoint" }
        }
        @if chains.is_empty() { p.empty { "No audit records yet." } }
        @else {
            table.list #chains {
                thead { tr {
                    th { "Tenant" } th.num { "Head" } th { "Head hash" } th.num { "Not chained yet" }
                    th { "Last verified" } th.num { "Held to" } th { "First broken link" } th { "" }
                } }
                tbody {
                    @for c in &chains {
                        tr data-tenant=(c.tenant_id) data-state=(state_of(c)) {
                            td title=(c.tenant_id) { (c.tenant_name.as_deref().unwrap_or("")) " " code { (short_id(c.tenant_id)) } }
                            td.num { (c.head_seq.map_or("—".to_owned(), |s| s.to_string())) }
                            td { code title=[c.head_hash.as_ref().map(hex::encode)] {
                                (c.head_hash.as_ref().map_or("—".to_owned(), |h| hex::encode(&h[..8]))) } }
                            td.num { (c.unchained) }
                            td { (c.verified_at.map_or("never".to_owned(), time)) }
                            td.num { (c.verified_seq.map_or("—".to_owned(), |s| s.to_string())) }
                            td.broken {
                                @if let Some(seq) = c.broken_seq {
                                    span.chip.bad { "broken" } " at position " strong { (seq) }
                                    @if let Some(record) = c.broken_record { ", audit record " strong { (record) } }
                                    ": " (c.broken_reason.as_deref().unwrap_or(""))
                                } @else if c.verified_at.is_some() {
                                    span.chip.good { "intact" }
                                }
                            }
                            td {
                                form.inline method="post" action="/console/audit/verify" {
                                    input type="hidden" name="csrf" value=(console.csrf);
                                    input type="hidden" name="tenant" value=(c.tenant_id);
                                    button type="submit" data-action="verify" { "Verify" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page::shell(
        &console,
        Section::Audit,
        "Audit integrity",
        body,
    ))
}

fn state_of(chain: &audit::ChainStatus) -> &'static str {
    match (chain.verified_at, chain.broken_seq) {
        (None, _) => "unverified",
        (Some(_), Some(_)) => "broken",
        (Some(_), None) => "intact",
    }
}

#[derive(serde::Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    tenant: String,
}

/// Chain what is pending, verify (one tenant's chain, or every chain the
/// viewer may see) and keep the result; then back to the page.
pub async fn verify(
    State(state): State<AppState>,
    console: Console,
    Form(form): Form<VerifyForm>,
) -> Result<impl IntoResponse, ConsoleError> {
    console.check_csrf(&form.csrf)?;
    let asked = tenant_field(&form.tenant)?;
    if let Some(tenant) = asked {
        if !console.viewer.sees(tenant) {
            return Err(ConsoleError::NotFound(format!("no tenant {}", tenant.0)));
        }
    }
    let pool = state.host.pool();
    audit::chain_pending(pool).await?;
    // Every tenant the page lists, each walked on its own: one whose links
    // were all deleted is walked too (as an empty chain), not skipped.
    let tenants: Vec<TenantId> = match console.viewer.scope().or(asked) {
        Some(tenant) => vec![tenant],
        None => audit::chains(pool, None)
            .await?
            .into_iter()
            .map(|c| TenantId(c.tenant_id))
            .collect(),
    };
    let mut broken = 0;
    for tenant in &tenants {
        let verification = audit::verify(pool, Some(*tenant), &[]).await?;
        broken += verification.broken.len();
        audit::save_verification(pool, &verification).await?;
    }
    tracing::info!(
        tenants = tenants.len(),
        broken,
        "console: audit chains verified"
    );
    Ok(Redirect::to("/console/audit"))
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct CheckpointQuery {
    #[serde(default)]
    tenant: String,
}

/// The heads of the chains the viewer may see, as `/v1/audit/checkpoint`
/// answers them, to save as a file.
pub async fn checkpoint(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<CheckpointQuery>,
) -> Result<impl IntoResponse, ConsoleError> {
    let pool = state.host.pool();
    audit::chain_pending(pool).await?;
    let asked = tenant_field(&query.tenant)?.map(|t| t.0);
    let scope = console.viewer.scope().map(|t| t.0);
    let checkpoints: Vec<_> = audit::checkpoint(pool)
        .await?
        .into_iter()
        .filter(|c| scope.is_none_or(|own| own == c.tenant_id))
        .filter(|c| asked.is_none_or(|t| t == c.tenant_id))
        .collect();
    let body = serde_json::to_vec_pretty(&serde_json::json!({ "checkpoints": checkpoints }))
        .map_err(anyhow::Error::from)?;
    let name = format!(
        "attachment; filename=\"bookhost-checkpoint-{}.json\"",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::CONTENT_DISPOSITION, name),
        ],
        body,
    ))
}

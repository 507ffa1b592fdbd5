//! Invocations: a live list (newest first, filtered by tenant, executor,
//! outcome and time) and one invocation's page — every attempt, why it was
//! replayed, and every capability call in order on a timeline.

use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use maud::{html, Markup};

use super::charts::{self, Span};
use super::error::ConsoleError;
use super::page::{self, micros, outcome, short_digest, short_id, time, Section};
use super::viewer::{tenant_field, Console};
use crate::api::AppState;
use crate::db::audit::{self, AuditFilter, AuditRecord};
use crate::db::insights::{self, InvocationFilter, InvocationSummary};
use crate::TenantId;

/// Outcomes a list can be filtered by: a final attempt's, or two of the
/// invocation as a whole.
const OUTCOMES: [&str; 10] = [
    "committed",
    "rolled_back",
    "trapped",
    "timed_out",
    "limit_exceeded",
    "host_failure",
    "dry_run",
    "changed",
    "replayed",
    "gave_up",
];

/// Time windows a list or a chart can show.
pub const WINDOWS: [(&str, i64); 4] = [("15m", 15), ("1h", 60), ("24h", 1440), ("7d", 10080)];

/// The minutes of a window named in a query (`None`: no window).
pub fn window_minutes(name: Option<&str>) -> Result<Option<i64>, ConsoleError> {
    match name {
        None | Some("") | Some("all") => Ok(None),
        Some(name) => WINDOWS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, minutes)| Some(*minutes))
            .ok_or_else(|| ConsoleError::BadRequest(format!("unknown time window {name:?}"))),
    }
}

/// The list's filters, as the page's form sends them.
#[derive(Debug, Default, Clone, serde::Deserialize, serde::Serialize)]
pub struct ListQuery {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    executor: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    window: String,
}

impl ListQuery {
    /// The filter for `console`'s viewer: a tenant sees only itself,
    /// whatever the query says.
    /// The query as `console`'s viewer may ask it: a tenant's session has
    /// no tenant filter to set (nor to echo back).
    fn for_viewer(mut self, console: &Console) -> Self {
        if !console.viewer.is_operator() {
            self.tenant.clear();
        }
        self
    }

    fn filter(
        &self,
        console: &Console,
        max_attempts: u32,
    ) -> Result<InvocationFilter, ConsoleError> {
        let asked = tenant_field(&self.tenant)?;
        let tenant = console.viewer.scope().or(asked);
        let outcome = match self.outcome.trim() {
            "" => None,
            o if OUTCOMES.contains(&o) => Some(o.to_owned()),
            o => return Err(ConsoleError::BadRequest(format!("unknown outcome {o:?}"))),
        };
        let since = window_minutes(Some(self.window.as_str()))?
            .map(|minutes| chrono::Utc::now() - chrono::Duration::minutes(minutes));
        Ok(InvocationFilter {
            tenant,
            executor: Some(self.executor.trim().to_owned()).filter(|e| !e.is_empty()),
            outcome,
            since,
            limit: Some(100),
            max_attempts,
        })
    }
}

/// The list page.
pub async fn list(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<ListQuery>,
) -> Result<impl IntoResponse, ConsoleError> {
    let query = query.for_viewer(&console);
    let max_attempts = state.host.settings().discipline.max_attempts;
    let filter = query.filter(&console, max_attempts)?;
    let pool = state.host.pool();
    let found = insights::invocations(pool, &filter).await?;
    let tenants = tenant_names(&state, &console).await?;
    let live = format!(
        "/console/invocations/rows?{}",
        serde_urlencoded_query(&query)
    );
    let body = html! {
        form.filters method="get" action="/console/invocations" {
            @if console.viewer.is_operator() {
                label { "Tenant "
                    select name="tenant" {
                        option value="" { "all" }
                        @for (id, name) in &tenants {
                            option value=(id) selected[query.tenant == id.to_string()] { (name) }
                        }
                    }
                }
            }
            label { "Executor " input type="text" name="executor" value=(query.executor) placeholder="any"; }
            label { "Outcome "
                select name="outcome" {
                    option value="" { "any" }
                    @for o in OUTCOMES { option value=(o) selected[query.outcome == o] { (o) } }
                }
            }
            label { "Time "
                select name="window" {
                    option value="" { "all" }
                    @for (w, _) in WINDOWS { option value=(w) selected[query.window == w] { "last " (w) } }
                }
            }
            button type="submit" { "Filter" }
            label.live { input #live type="checkbox" checked; " live" }
        }
        table.list {
            thead { tr {
                th { "Recorded" } th { "Invocation" } th { "Tenant" } th { "Executor" }
                th { "Outcome" } th.num { "Attempts" } th.num { "Replays" }
                th.num { "Duration" } th.num { "Lock wait" }
            } }
            tbody #rows data-live=(live) { (rows(&found, &tenants, max_attempts)) }
        }
    };
    Ok(page::shell(
        &console,
        Section::Invocations,
        "Invocations",
        body,
    ))
}

/// The list's rows alone, for the page's live refresh.
pub async fn rows_fragment(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<ListQuery>,
) -> Result<Markup, ConsoleError> {
    let query = query.for_viewer(&console);
    let max_attempts = state.host.settings().discipline.max_attempts;
    let filter = query.filter(&console, max_attempts)?;
    let found = insights::invocations(state.host.pool(), &filter).await?;
    let tenants = tenant_names(&state, &console).await?;
    Ok(rows(&found, &tenants, max_attempts))
}

/// Every tenant's name, for the operator (a tenant sees only itself).
async fn tenant_names(
    state: &AppState,
    console: &Console,
) -> Result<Vec<(uuid::Uuid, String)>, ConsoleError> {
    Ok(match console.viewer.scope() {
        None => crate::db::tenant_names(state.host.pool()).await?,
        Some(_) => Vec::new(),
    })
}

fn rows(
    found: &[InvocationSummary],
    tenants: &[(uuid::Uuid, String)],
    max_attempts: u32,
) -> Markup {
    let name_of = |id: uuid::Uuid| {
        tenants
            .iter()
            .find(|(t, _)| *t == id)
            .map_or_else(|| short_id(id), |(_, name)| name.clone())
    };
    html! {
        @if found.is_empty() {
            tr { td colspan="9" .empty { "No invocations match." } }
        }
        @for inv in found {
            tr data-outcome=(inv.last_outcome) {
                td { (time(inv.recorded_at)) }
                td { a href=(format!("/console/invocations/{}/{}", inv.tenant_id, inv.invocation_id)) title=(inv.invocation_id) {
                    (short_id(inv.invocation_id)) } }
                td title=(inv.tenant_id) { (name_of(inv.tenant_id)) }
                td { (inv.executor) }
                td { (outcome(final_outcome(inv, max_attempts))) }
                td.num { (inv.attempts) }
                td.num { (inv.replays) }
                td.num { (micros(inv.duration_us)) }
                td.num { (micros(inv.lock_wait_us)) }
            }
        }
    }
}

/// What an invocation came to: its last attempt's outcome; when every
/// attempt so far was replayed, that it gave up (all its attempts used) or
/// is still replaying (or ended without a record of its own: a host
/// failure after lost connections, which its log tells).
fn final_outcome(inv: &InvocationSummary, max_attempts: u32) -> &str {
    match inv.last_outcome.as_str() {
        "replayed" if inv.attempts >= max_attempts as i64 => "gave_up",
        "replayed" => "replaying",
        other => other,
    }
}

/// The query string of `query` (to poll the same filtered rows).
fn serde_urlencoded_query(query: &ListQuery) -> String {
    let pairs = [
        ("tenant", &query.tenant),
        ("executor", &query.executor),
        ("outcome", &query.outcome),
        ("window", &query.window),
    ];
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// One invocation: its attempts and their calls.
pub async fn show(
    State(state): State<AppState>,
    console: Console,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Markup, ConsoleError> {
    // Says nothing of what was asked, so it cannot confirm an id exists.
    let not_found = || ConsoleError::NotFound("no such invocation".into());
    let tenant = TenantId(tenant.parse().map_err(|_| not_found())?);
    let invocation_id: uuid::Uuid = id.parse().map_err(|_| not_found())?;
    // Another tenant's invocation is answered as one that does not exist.
    if !console.viewer.sees(tenant) {
        return Err(not_found());
    }
    let filter = AuditFilter::invocation(tenant.0, invocation_id);
    let records = audit::search(state.host.pool(), &filter).await?;
    let first = records.first().ok_or_else(not_found)?;
    let last = records.last().expect("not empty");
    let start = |r: &AuditRecord| r.recorded_at.timestamp_micros() - r.duration_us;
    let origin = records.iter().map(start).min().unwrap_or(0);
    let end = records
        .iter()
        .map(|r| r.recorded_at.timestamp_micros())
        .max()
        .unwrap_or(origin);
    let attempt_spans: Vec<Span> = records
        .iter()
        .map(|r| Span {
            start_us: start(r) - origin,
            duration_us: r.duration_us,
            wait_us: 0,
            class: if r.outcome == "replayed" {
                "replayed"
            } else {
                "final"
            },
            title: format!(
                "attempt {}: {} in {}",
                r.attempt,
                r.outcome,
                micros(r.duration_us)
            ),
        })
        .collect();
    let body = html! {
        dl.facts {
            dt { "Invocation" } dd { code { (invocation_id) } }
            dt { "Tenant" } dd { code { (tenant.0) } }
            dt { "Executor" } dd {
                a href=(format!("/console/executors/{}/{}", tenant.0, first.executor)) { (first.executor) }
                " version " code title=(first.version) { (short_digest(&first.version)) }
            }
            dt { "Outcome" } dd { (outcome(&last.outcome)) " after " (records.len()) " attempt(s)" }
            @if let Some(proposal) = first.proposal_id { dt { "Proposal" } dd { code { (proposal) } } }
        }
        h2 { "Attempts" }
        (charts::timeline(&attempt_spans, end - origin))
        @for record in &records {
            (attempt(record))
        }
    };
    Ok(page::shell(
        &console,
        Section::Invocations,
        &format!("Invocation {}", short_id(invocation_id)),
        body,
    ))
}

/// One attempt: its outcome, why it was replayed, its calls in order.
fn attempt(record: &AuditRecord) -> Markup {
    let calls = record.calls.as_array().cloned().unwrap_or_default();
    let attempt_start = record.recorded_at.timestamp_micros() - record.duration_us;
    let int = |call: &serde_json::Value, field: &str| call[field].as_i64().unwrap_or(0);
    let spans: Vec<Span> = calls
        .iter()
        .map(|call| {
            let at = call["at"]
                .as_str()
                .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
                .map_or(attempt_start, |at| at.timestamp_micros());
            let duration = int(call, "duration_us");
            Span {
                start_us: at - duration - attempt_start,
                duration_us: duration,
                wait_us: int(call, "lock_wait_us"),
                class: if call["outcome"] == "ok" {
                    "ok"
                } else {
                    "failed"
                },
                title: format!(
                    "{} {}: {}",
                    call["capability"].as_str().unwrap_or("?"),
                    call["table"].as_str().unwrap_or(""),
                    micros(duration)
                ),
            }
        })
        .collect();
    html! {
        section.attempt id=(format!("attempt-{}", record.attempt)) data-outcome=(record.outcome) {
            h3 {
                "Attempt " (record.attempt) " " (outcome(&record.outcome))
                @if let Some(reason) = &record.replay_reason {
                    " " span.reason { "replayed: " (reason.replace('_', " ")) }
                }
            }
            p.meta {
                (time(record.recorded_at)) " · " (micros(record.duration_us)) " · lock wait "
                (micros(record.lock_wait_us)) " · " (calls.len()) " call(s) · audit record " (record.id)
            }
            @if calls.is_empty() {
                p.empty { "No capability calls." }
            } @else {
                (charts::timeline(&spans, record.duration_us))
                table.calls {
                    thead { tr {
                        th.num { "#" } th { "Capability" } th { "Table / key" } th { "Detail (redacted)" }
                        th.num { "Rows" } th { "Outcome" } th.num { "Lock wait" } th.num { "Duration" }
                    } }
                    tbody {
                        @for (i, call) in calls.iter().enumerate() {
                            tr.call {
                                td.num { (i + 1) }
                                td { (call["capability"].as_str().unwrap_or("?")) }
                                td { (call["table"].as_str().or(call["detail"]["key"].as_str()).unwrap_or("")) }
                                td { code.detail { (call["detail"].to_string()) } }
                                td.num { (int(call, "rows")) }
                                td {
                                    (outcome(call["outcome"].as_str().unwrap_or("?")))
                                    @if let Some(error) = call["error"].as_str() { div.error { (error) } }
                                }
                                td.num { (micros(int(call, "lock_wait_us"))) }
                                td.num { (micros(int(call, "duration_us"))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

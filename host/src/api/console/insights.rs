//! Conflict insights: replays and lock waits per executor, per table and
//! per lock key over a window, as charts; the invocations that gave up;
//! the slowest calls.

use axum::extract::{Query, State};
use maud::{html, Markup};

use super::charts;
use super::error::ConsoleError;
use super::invocations::{window_minutes, WINDOWS};
use super::page::{self, micros, outcome, short_id, time, Section};
use super::viewer::Console;
use crate::api::AppState;
use crate::db::insights::{self, Series, Window};

/// Buckets per chart.
const BUCKETS: i32 = 12;

#[derive(Debug, Default, serde::Deserialize)]
pub struct InsightsQuery {
    #[serde(default)]
    window: String,
}

pub async fn page(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<InsightsQuery>,
) -> Result<Markup, ConsoleError> {
    let name = if query.window.is_empty() {
        "1h"
    } else {
        query.window.as_str()
    };
    let minutes = window_minutes(Some(name))?
        .ok_or_else(|| ConsoleError::BadRequest("insights need a time window".into()))?;
    let to = chrono::Utc::now();
    let window = Window {
        from: to - chrono::Duration::minutes(minutes),
        to,
        buckets: BUCKETS,
    };
    let max_attempts = state.host.settings().discipline.max_attempts;
    let found = insights::insights(
        state.host.pool(),
        console.viewer.scope(),
        window,
        max_attempts,
    )
    .await?;
    let bucket_minutes = minutes as f64 / BUCKETS as f64;
    let body = html! {
        form.filters method="get" action="/console/insights" {
            label { "Window "
                select name="window" {
                    @for (w, _) in WINDOWS { option value=(w) selected[name == w] { "last " (w) } }
                }
            }
            button type="submit" { "Show" }
        }
        p.meta {
            (time(window.from)) " to " (time(window.to)) ", " (BUCKETS) " buckets of "
            (format!("{bucket_minutes:.1}")) " min · " (found.attempts) " attempts, "
            span #total-replays { (found.replays) } " replayed"
            @if found.attempts >= insights::WINDOW_RECORDS {
                " (the newest " (insights::WINDOW_RECORDS) " attempts of the window: choose a shorter one for all)"
            }
        }
        (dimension("By executor", "executor", &found.by_executor, bucket_minutes))
        p.meta { "Tables and lock keys: those that replayed attempts touched or that attempts waited on." }
        (dimension("By table", "table", &found.by_table, bucket_minutes))
        (dimension("By lock key", "lock-key", &found.by_lock_key, bucket_minutes))
        h2 { "Gave up (retries exhausted)" }
        @if found.gave_up.is_empty() {
            p.empty #gave-up { "None in this window." }
        } @else {
            table.list #gave-up {
                thead { tr { th { "Recorded" } th { "Invocation" } th { "Executor" } th.num { "Attempts" } th.num { "Lock wait" } } }
                tbody {
                    @for inv in &found.gave_up {
                        tr {
                            td { (time(inv.recorded_at)) }
                            td { a href=(format!("/console/invocations/{}/{}", inv.tenant_id, inv.invocation_id)) { (short_id(inv.invocation_id)) } }
                            td { (inv.executor) }
                            td.num { (inv.attempts) }
                            td.num { (micros(inv.lock_wait_us)) }
                        }
                    }
                }
            }
        }
        h2 { "Slowest calls" }
        p.meta { "Among the calls of the window's 100 slowest attempts." }
        @if found.slowest.is_empty() {
            p.empty { "No calls in this window." }
        } @else {
            table.list #slowest {
                thead { tr { th { "Invocation" } th { "Executor" } th.num { "Attempt" } th { "Capability" } th { "Table / key" } th { "Outcome" } th.num { "Lock wait" } th.num { "Duration" } } }
                tbody {
                    @for call in &found.slowest {
                        tr {
                            td { a href=(format!("/console/invocations/{}/{}#attempt-{}", call.tenant_id, call.invocation_id, call.attempt)) { (short_id(call.invocation_id)) } }
                            td { (call.executor) }
                            td.num { (call.attempt) }
                            td { (call.capability) }
                            td { (call.target.as_deref().unwrap_or("")) }
                            td { (outcome(&call.outcome)) }
                            td.num { (micros(call.lock_wait_us)) }
                            td.num { (micros(call.duration_us)) }
                        }
                    }
                }
            }
        }
    };
    Ok(page::shell(
        &console,
        Section::Insights,
        "Conflict insights",
        body,
    ))
}

/// One dimension's table: a row per name with its replays and lock waits
/// over the window, each as a chart.
fn dimension(title: &str, id: &str, series: &[Series], bucket_minutes: f64) -> Markup {
    let when = |i: usize| {
        format!(
            "{:.0} min ago",
            (BUCKETS as usize - i) as f64 * bucket_minutes
        )
    };
    html! {
        h2 { (title) }
        @if series.is_empty() {
            p.empty { "Nothing in this window." }
        } @else {
            table.list.insights id=(id) {
                thead { tr { th { "Name" } th.num { "Replays" } th { "Replays over time" } th.num { "Lock wait" } th { "Lock wait over time" } } }
                tbody {
                    @for s in series {
                        tr data-name=(s.name) data-replays=(s.total_replays()) {
                            td { code { (s.name) } }
                            td.num.replays { (s.total_replays()) }
                            td { (charts::bars(&s.replays, "replays", |i, v| format!("{v} replayed, from {}", when(i)))) }
                            td.num { (micros(s.total_lock_wait_us())) }
                            td { (charts::bars(&s.lock_wait_us, "waits", |i, v| format!("{} waited, from {}", micros(v), when(i)))) }
                        }
                    }
                }
            }
        }
    }
}

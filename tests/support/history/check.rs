//! The checker: a recorded history held against the database, the audit and what was left behind.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use bookhost::TenantId;
use serde_json::Value;
use sqlx::PgPool;

use super::{Effect, History, Operation, Outcome};

/// An invariant of a scenario, checked over the tenant's rows.
#[derive(Debug, Clone)]
pub enum Invariant {
    /// No two active (pending, confirmed) bookings of one service overlap.
    NoOverlappingBookings,
    /// At most one pending request per pet.
    OnePendingRequestPerPet,
    /// Section ids are unique across the tenant's pages.
    UniqueSectionIds,
    /// A query (`$1` = the tenant id) returning how many rows break the
    /// invariant named `name` (a bigint).
    Sql {
        name: &'static str,
        sql: &'static str,
    },
}

impl Invariant {
    /// The invariants of the four seed scenarios (DESIGN.md).
    pub const SEED: &'static [Invariant] = &[
        Invariant::NoOverlappingBookings,
        Invariant::OnePendingRequestPerPet,
        Invariant::UniqueSectionIds,
    ];

    fn name_and_sql(&self) -> (&'static str, &'static str) {
        match self {
            Invariant::NoOverlappingBookings => (
                "overlapping active bookings of one service",
                "SELECT count(*) FROM bookings a JOIN bookings b ON b.tenant_id = a.tenant_id \
                 AND b.service_id = a.service_id AND a.id < b.id \
                 AND tstzrange(a.starts_at, a.ends_at) && tstzrange(b.starts_at, b.ends_at) \
                 WHERE a.tenant_id = $1 AND a.status IN ('pending', 'confirmed') \
                 AND b.status IN ('pending', 'confirmed')",
            ),
            Invariant::OnePendingRequestPerPet => (
                "pets with more than one pending request",
                "SELECT count(*) FROM (SELECT pet FROM booking_requests WHERE tenant_id = $1 \
                 AND status = 'pending' GROUP BY pet HAVING count(*) > 1) d",
            ),
            Invariant::UniqueSectionIds => (
                "section ids used more than once",
                "SELECT count(*) FROM (SELECT s ->> 'id' FROM storefront_pages p, \
                 jsonb_array_elements(p.config -> 'sections') s WHERE p.tenant_id = $1 \
                 GROUP BY 1 HAVING count(*) > 1) d",
            ),
            Invariant::Sql { name, sql } => (name, sql),
        }
    }
}

/// What [`check`] found. Tests assert `violations` is empty
/// ([`CheckReport::assert_clean`]); the rest is for reports.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub operations: usize,
    pub ok: usize,
    pub fail: usize,
    pub unknown: usize,
    /// Unknown operations that took effect.
    pub unknown_applied: usize,
    pub tries: usize,
    /// Operations that needed more than one try.
    pub retried: usize,
    /// Every try, by [`super::Try::label`].
    pub try_labels: BTreeMap<String, usize>,
    /// Advisory locks and sessions idle in a transaction still there when
    /// the check gave up waiting for them to go (0 when settled).
    pub advisory_locks: i64,
    pub idle_in_transaction: i64,
    /// The tenant's audit records verified in the chain.
    pub audit_records: u64,
    /// How long the database took to settle before the check.
    pub settle: Duration,
    pub violations: Vec<String>,
}

impl CheckReport {
    pub fn retried_share(&self) -> f64 {
        if self.operations == 0 {
            0.0
        } else {
            self.retried as f64 / self.operations as f64
        }
    }

    /// Panics listing every violation, if there is any.
    #[track_caller]
    pub fn assert_clean(&self) {
        assert!(
            self.violations.is_empty(),
            "the checker found {} violation(s):\n  {}\n{self}",
            self.violations.len(),
            self.violations.join("\n  ")
        );
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} operations: {} ok / {} fail / {} unknown ({} of them applied); {} tries, {:.1} % of \
             operations retried; tries {:?}; advisory locks left {}, idle in transaction {}; \
             {} audit records verified; settled in {} ms; {} violations",
            self.operations,
            self.ok,
            self.fail,
            self.unknown,
            self.unknown_applied,
            self.tries,
            self.retried_share() * 100.0,
            self.try_labels,
            self.advisory_locks,
            self.idle_in_transaction,
            self.audit_records,
            self.settle.as_millis(),
            self.violations.len()
        )
    }
}

/// How long [`check`] waits for in-flight work (and its locks and open
/// transactions) to end before it counts what is left as violations.
const SETTLE: Duration = Duration::from_secs(10);

/// Check `history` (operations of `tenant`) against the database, read
/// through `owner` (the tables' owner: past row-level security):
///
/// - every `Ok` took effect exactly once, its key's stored answer is a
///   committed one with the same invocation id, and that invocation has
///   exactly one committed audit record;
/// - every `Fail` took effect never, and no committed answer is stored;
/// - every `Unknown` took effect 0 or 1 times;
/// - for every operation, effect and stored committed answer agree (both
///   or neither: nothing half-applied), and every stored committed answer
///   has its committed audit record (committed implies recorded);
/// - no row was removed twice over; the `invariants` hold;
/// - once in-flight work settles: no advisory lock held, no session idle
///   in a transaction; the tenant's audit chain verifies, with every
///   record chained.
///
/// Call it after the clients are done (faults healed), on a database only
/// this test uses: locks and sessions are counted database-wide.
pub async fn check(
    owner: &PgPool,
    tenant: TenantId,
    history: &History,
    invariants: &[Invariant],
) -> CheckReport {
    let mut report = CheckReport {
        operations: history.len(),
        ok: history.count(Outcome::Ok),
        fail: history.count(Outcome::Fail),
        unknown: history.count(Outcome::Unknown),
        tries: history.tries().count(),
        retried: history.records.iter().filter(|r| r.retried()).count(),
        try_labels: history.try_labels(),
        ..CheckReport::default()
    };
    let violations = &mut report.violations;

    let began = Instant::now();
    let (locks, idle) = settle(owner, SETTLE).await;
    report.settle = began.elapsed();
    report.advisory_locks = locks;
    report.idle_in_transaction = idle;
    if locks > 0 {
        violations.push(format!(
            "{locks} advisory lock(s) still held after {SETTLE:?}"
        ));
    }
    if idle > 0 {
        violations.push(format!(
            "{idle} session(s) still idle in a transaction after {SETTLE:?}"
        ));
    }

    let stored = stored_answers(owner, tenant, history).await;
    let effects = effect_counts(owner, tenant, history, &stored).await;

    // Invocation ids that must have exactly one committed audit record
    // (what was acknowledged, and what the database says committed), and
    // those that must have none (refusals).
    let mut committed_ids: Vec<(uuid::Uuid, String)> = Vec::new();
    let mut refused_ids: Vec<(uuid::Uuid, String)> = Vec::new();
    let mut removals: HashMap<(&str, &str), usize> = HashMap::new();

    for record in &history.records {
        let op = &record.op;
        let name = describe(op);
        let answer = stored.get(op.idempotency_key.as_str());
        let stored_committed = answer.is_some_and(|a| a.status == 200);
        let count = effects.get(op.idempotency_key.as_str()).copied();
        match record.outcome {
            Outcome::Ok => {
                if let Some(n) = count.filter(|n| *n != 1) {
                    violations.push(format!("{name} was acknowledged but took effect {n} times"));
                }
                if !stored_committed {
                    violations.push(format!(
                        "{name} was acknowledged but its key has no stored committed answer ({:?})",
                        answer.map(|a| a.status)
                    ));
                }
                match (record.invocation_id(), answer.and_then(|a| a.invocation_id)) {
                    (Some(seen), Some(kept)) if seen != kept => violations.push(format!(
                        "{name} was answered invocation {seen} but its key's stored answer is {kept}"
                    )),
                    (None, _) => violations.push(format!("{name} was acknowledged without an invocation id")),
                    _ => {}
                }
                if let Some(id) = record.invocation_id() {
                    committed_ids.push((id, name.clone()));
                }
            }
            Outcome::Fail => {
                if let Some(n) = count.filter(|n| *n != 0) {
                    violations.push(format!(
                        "{name} was refused ({} {}) but took effect {n} times",
                        record.status.unwrap_or(0),
                        record.error_code().unwrap_or("?")
                    ));
                }
                if stored_committed {
                    violations.push(format!(
                        "{name} was refused ({} {}) but its key's stored answer says it committed",
                        record.status.unwrap_or(0),
                        record.error_code().unwrap_or("?")
                    ));
                }
                if let Some(id) = record.invocation_id() {
                    refused_ids.push((id, name.clone()));
                }
            }
            Outcome::Unknown => {
                if let Some(n) = count.filter(|n| *n > 1) {
                    violations.push(format!(
                        "{name} (unknown to its client) took effect {n} times"
                    ));
                }
                if count == Some(1) || (count.is_none() && stored_committed) {
                    report.unknown_applied += 1;
                }
            }
        }
        // All or nothing, whatever the client heard: the committed answer
        // is stored in the invocation's own transaction.
        if !matches!(op.effect, Effect::Removes { .. }) {
            if let Some(n) = count {
                if (n >= 1) != stored_committed {
                    violations.push(format!(
                        "{name} half-applied: took effect {n} times, but the key's stored committed \
                         answer is {}",
                        if stored_committed { "there" } else { "missing" }
                    ));
                }
            }
        }
        if stored_committed && record.outcome != Outcome::Ok {
            if let Some(id) = answer.and_then(|a| a.invocation_id) {
                committed_ids.push((id, name.clone()));
            }
        }
        if let Effect::Removes { table, id } = &op.effect {
            if stored_committed {
                *removals.entry((*table, id.as_str())).or_default() += 1;
                if count == Some(0) {
                    violations.push(format!(
                        "{name}: its key's stored answer says it committed, but {table} row {id} exists"
                    ));
                }
            }
        }
    }
    for ((table, id), n) in removals {
        if n > 1 {
            violations.push(format!(
                "{table} row {id} was removed by {n} committed operations"
            ));
        }
    }

    let ids: Vec<uuid::Uuid> = committed_ids
        .iter()
        .chain(&refused_ids)
        .map(|(id, _)| *id)
        .collect();
    let audited: HashMap<uuid::Uuid, i64> = sqlx::query_as(
        "SELECT invocation_id, count(*) FILTER (WHERE outcome = 'committed') FROM audit_records \
         WHERE tenant_id = $1 AND invocation_id = ANY($2) GROUP BY invocation_id",
    )
    .bind(tenant.0)
    .bind(&ids)
    .fetch_all(owner)
    .await
    .expect("reading audit records")
    .into_iter()
    .collect();
    let mut seen = HashSet::new();
    for (id, name) in &committed_ids {
        let n = audited.get(id).copied().unwrap_or(0);
        if seen.insert(*id) && n != 1 {
            violations.push(format!(
                "{name} committed (invocation {id}) but has {n} committed audit records"
            ));
        }
    }
    for (id, name) in &refused_ids {
        let n = audited.get(id).copied().unwrap_or(0);
        if n != 0 {
            violations.push(format!(
                "{name} was refused (invocation {id}) but has {n} committed audit records"
            ));
        }
    }

    for invariant in invariants {
        let (what, sql) = invariant.name_and_sql();
        let broken: i64 = sqlx::query_scalar(sql)
            .bind(tenant.0)
            .fetch_one(owner)
            .await
            .unwrap_or_else(|e| panic!("checking {what}: {e}"));
        if broken != 0 {
            violations.push(format!("invariant broken: {broken} {what}"));
        }
    }

    // The hosts chain every second; chain what is left now rather than
    // wait (as an operator's command would, as the owner).
    bookhost::db::audit::chain_pending(owner)
        .await
        .expect("chaining the audit records");
    let verification = bookhost::db::audit::verify(owner, Some(tenant), &[])
        .await
        .expect("verifying the audit chain");
    report.audit_records = verification.records;
    for broken in &verification.broken {
        violations.push(format!(
            "audit chain broken at position {} (record {:?}): {}",
            broken.seq, broken.record_id, broken.reason
        ));
    }
    if verification.unchained != 0 {
        violations.push(format!(
            "{} audit record(s) not chained after chaining everything committed",
            verification.unchained
        ));
    }
    report
}

/// `create-booking op-12 (key 5f…)`: how violations name an operation.
fn describe(op: &Operation) -> String {
    match op.marker() {
        Some(marker) => format!("{} {marker} (key {})", op.executor, op.idempotency_key),
        None => format!("{} {} (key {})", op.executor, op.input, op.idempotency_key),
    }
}

/// Wait until no advisory lock is held, no session is idle in a
/// transaction and no session of the host's role is running a statement
/// (in-flight work has ended), or `limit` passes; returns the locks and
/// idle sessions last seen.
async fn settle(owner: &PgPool, limit: Duration) -> (i64, i64) {
    let deadline = Instant::now() + limit;
    loop {
        // The hosts' chainers take a lock for a moment every second: one
        // quiet sample is enough, a leak never gives one.
        let (locks, idle, active): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'), \
                    (SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'), \
                    (SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND state = 'active')",
        )
        .bind(bookhost::db::APP_ROLE)
        .fetch_one(owner)
        .await
        .expect("reading pg_locks and pg_stat_activity");
        if (locks == 0 && idle == 0 && active == 0) || Instant::now() >= deadline {
            return (locks, idle);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A key's stored answer.
struct StoredAnswer {
    status: i32,
    invocation_id: Option<uuid::Uuid>,
}

/// The live stored answers of the history's keys, by key.
async fn stored_answers<'h>(
    owner: &PgPool,
    tenant: TenantId,
    history: &'h History,
) -> HashMap<&'h str, StoredAnswer> {
    let keys: Vec<&str> = history
        .records
        .iter()
        .map(|r| r.op.idempotency_key.as_str())
        .collect();
    let rows: Vec<(String, i32, Vec<u8>)> = sqlx::query_as(
        "SELECT key, status_code, response FROM idempotency_keys \
         WHERE tenant_id = $1 AND key = ANY($2) AND expires_at > now()",
    )
    .bind(tenant.0)
    .bind(&keys)
    .fetch_all(owner)
    .await
    .expect("reading stored answers");
    let mut by_key: HashMap<String, StoredAnswer> = rows
        .into_iter()
        .map(|(key, status, response)| {
            let invocation_id = serde_json::from_slice::<Value>(&response)
                .ok()
                .and_then(|v| v["invocation_id"].as_str()?.parse().ok());
            (
                key,
                StoredAnswer {
                    status,
                    invocation_id,
                },
            )
        })
        .collect();
    keys.into_iter()
        .filter_map(|k| Some((k, by_key.remove(k)?)))
        .collect()
}

/// How many times each operation (by key) took effect; operations whose
/// effect cannot be counted are absent.
async fn effect_counts<'h>(
    owner: &PgPool,
    tenant: TenantId,
    history: &'h History,
    stored: &HashMap<&str, StoredAnswer>,
) -> HashMap<&'h str, i64> {
    // One query per kind of effect (and table), not one per operation.
    let mut rows_by_table: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    let mut sections: Vec<&str> = Vec::new();
    let mut removed_by_table: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for record in &history.records {
        match &record.op.effect {
            Effect::Rows {
                table,
                column,
                value,
            } => rows_by_table
                .entry((table, column))
                .or_default()
                .push(value),
            Effect::Section { by } => sections.push(by),
            Effect::Removes { table, id } => removed_by_table.entry(table).or_default().push(id),
            Effect::Unobservable => {}
        }
    }
    let mut found: HashMap<(&str, String), i64> = HashMap::new();
    for ((table, column), values) in &rows_by_table {
        let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
            "SELECT {column}::text, count(*) FROM {table} WHERE tenant_id = $1 \
             AND {column}::text = ANY($2) GROUP BY 1"
        ))
        .bind(tenant.0)
        .bind(values)
        .fetch_all(owner)
        .await
        .unwrap_or_else(|e| panic!("counting rows of {table}: {e}"));
        for (value, n) in rows {
            found.insert((table, value), n);
        }
    }
    if !sections.is_empty() {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT s ->> 'by', count(*) FROM storefront_pages p, \
             jsonb_array_elements(p.config -> 'sections') s \
             WHERE p.tenant_id = $1 AND s ->> 'by' = ANY($2) GROUP BY 1",
        )
        .bind(tenant.0)
        .bind(&sections)
        .fetch_all(owner)
        .await
        .expect("counting page sections");
        for (value, n) in rows {
            found.insert(("#sections", value), n);
        }
    }
    let mut present: HashSet<(&str, String)> = HashSet::new();
    for (table, ids) in &removed_by_table {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT id::text FROM {table} WHERE tenant_id = $1 AND id::text = ANY($2)"
        ))
        .bind(tenant.0)
        .bind(ids)
        .fetch_all(owner)
        .await
        .unwrap_or_else(|e| panic!("looking up rows of {table}: {e}"));
        present.extend(rows.into_iter().map(|id| (*table, id)));
    }
    let mut counts = HashMap::new();
    for record in &history.records {
        let key = record.op.idempotency_key.as_str();
        let n = match &record.op.effect {
            Effect::Rows { table, value, .. } => {
                found.get(&(*table, value.clone())).copied().unwrap_or(0)
            }
            Effect::Section { by } => found.get(&("#sections", by.clone())).copied().unwrap_or(0),
            Effect::Removes { table, id } => {
                let committed = stored.get(key).is_some_and(|a| a.status == 200);
                i64::from(committed && !present.contains(&(*table, id.clone())))
            }
            Effect::Unobservable => continue,
        };
        counts.insert(key, n);
    }
    counts
}

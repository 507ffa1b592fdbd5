//! Grants and the audit: denied calls are refused and recorded, every
//! attempt (replayed, trapped) keeps its calls, the hash chain detects each
//! kind of tampering done directly in SQL, and /metrics shows the conflicts.

use std::future::IntoFuture;
use std::sync::Arc;

use bookhost::capabilities::grant::Grant;
use bookhost::db::audit::{self, AuditFilter, AuditRecord};
use bookhost::runtime::InvokeOptions;
use bookhost::{Host, InvocationOutcome, TenantId};
use bookhost_tests::executors::*;
use bookhost_tests::*;
use serde_json::json;

async fn records_of(host: &Host, tenant: TenantId, invocation: uuid::Uuid) -> Vec<AuditRecord> {
    let filter = AuditFilter {
        tenant: Some(tenant.0),
        invocation_id: Some(invocation),
        limit: Some(1000),
        ..Default::default()
    };
    audit::search(host.pool(), &filter).await.unwrap()
}

/// Every call of `records`: (capability, call outcome, attempt outcome, the call).
fn calls(records: &[AuditRecord]) -> Vec<(String, String, String, serde_json::Value)> {
    records
        .iter()
        .flat_map(|r| {
            r.calls.as_array().unwrap().iter().map(|c| {
                (
                    c["capability"].as_str().unwrap().to_owned(),
                    c["outcome"].as_str().unwrap().to_owned(),
                    r.outcome.clone(),
                    c.clone(),
                )
            })
        })
        .collect()
}

/// (capability, call outcome, attempt outcome) of every call.
fn summary(records: &[AuditRecord]) -> Vec<(String, String, String)> {
    calls(records)
        .into_iter()
        .map(|(c, o, a, _)| (c, o, a))
        .collect()
}

fn triple(capability: &str, outcome: &str, attempt: &str) -> (String, String, String) {
    (capability.into(), outcome.into(), attempt.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_outside_the_grant_is_refused_and_audited() {
    let host = host(4).await;
    let tenant = tenant(&owner()).await;
    let executor = host.registry().get(CREATE_SERVICE).unwrap();
    let options = InvokeOptions {
        grant: Some(Arc::new(Grant::new([]))),
        ..Default::default()
    };
    let input = json!({"name": "ungranted", "duration_minutes": 30}).to_string();
    let report = host
        .invoke_executor(tenant, &executor, &input, options)
        .await
        .unwrap();
    match &report.outcome {
        InvocationOutcome::UserError { body } => {
            assert_eq!(body["error"], "forbidden", "{body}");
            assert!(
                body["message"]
                    .as_str()
                    .unwrap()
                    .contains("missing grant insert:services"),
                "{body}"
            );
        }
        other => panic!("expected the executor to report the refusal, got {other:?}"),
    }
    let records = records_of(&host, tenant, report.invocation_id).await;
    assert_eq!(
        summary(&records),
        [triple("insert", "denied", "rolled_back")]
    );
    assert_eq!(
        calls(&records)[0].3["error"],
        "missing grant insert:services"
    );
    let services = services_of(tenant).await;
    assert_eq!(services, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_values_are_redacted_in_the_audit() {
    let host = host(4).await;
    let tenant = tenant(&owner()).await;
    let report = invoke(
        &host,
        tenant,
        REQUEST_APPOINTMENT,
        json!({"customer": "Ada Lovelace", "pet": "Rex"}),
    )
    .await;
    ok_output(&report);
    let records = records_of(&host, tenant, report.invocation_id).await;
    let text =
        serde_json::to_string(&records.iter().map(|r| &r.calls).collect::<Vec<_>>()).unwrap();
    assert!(
        !text.contains("Ada Lovelace") && !text.contains("Rex"),
        "personal values leaked: {text}"
    );
    let insert = calls(&records)
        .into_iter()
        .find(|c| c.0 == "insert")
        .unwrap()
        .3;
    assert!(
        insert["detail"]["values"]["pet"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{}",
        insert["detail"]
    );
    assert_eq!(
        insert["detail"]["values"]["status"], "pending",
        "non-personal values are kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_invocation_shows_every_attempt_with_its_calls() {
    const N: usize = 16;
    let host = host(N as u32).await;
    let tenant = tenant(&owner()).await;
    ok_output(
        &invoke(
            &host,
            tenant,
            FIXTURE_FAULTS,
            json!({"mode": "count-attempts"}),
        )
        .await,
    );
    let reports = concurrently(
        &host,
        tenant,
        FIXTURE_FAULTS,
        vec![json!({"mode": "count-attempts"}); N],
    )
    .await;
    let replayed = reports
        .iter()
        .find(|r| r.attempts > 1)
        .expect("16 concurrent increments of one row replay");
    let records = records_of(&host, tenant, replayed.invocation_id).await;
    for attempt in 1..=replayed.attempts {
        let of_attempt: Vec<_> = records
            .iter()
            .filter(|r| r.attempt == attempt as i32)
            .collect();
        let expected = if attempt == replayed.attempts {
            "committed"
        } else {
            "replayed"
        };
        assert_eq!(of_attempt.len(), 1, "one record per attempt");
        assert_eq!(of_attempt[0].outcome, expected, "attempt {attempt}");
        // Each replayed record says why, as the report does, in order.
        let reason = replayed
            .replays
            .get(attempt as usize - 1)
            .map(|r| r.as_str());
        assert_eq!(
            of_attempt[0].replay_reason.as_deref(),
            reason,
            "attempt {attempt}"
        );
        assert!(
            of_attempt[0]
                .calls
                .as_array()
                .unwrap()
                .iter()
                .any(|call| call["capability"] == "query" && call["table"] == "storefront_pages"),
            "attempt {attempt} keeps its calls: {of_attempt:?}"
        );
    }
    let max_attempt = records.iter().map(|r| r.attempt).max().unwrap();
    assert_eq!(
        max_attempt as u32, replayed.attempts,
        "no attempt is missing from the record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapped_attempts_calls_survive_its_rollback() {
    let host = host(4).await;
    let tenant = tenant(&owner()).await;
    let report = invoke(
        &host,
        tenant,
        FIXTURE_FAULTS,
        json!({"mode": "trap-after-write", "name": "gone"}),
    )
    .await;
    assert!(matches!(report.outcome, InvocationOutcome::Trap { .. }));
    let records = records_of(&host, tenant, report.invocation_id).await;
    assert_eq!(summary(&records), [triple("insert", "ok", "trapped")]);
    assert_eq!(
        calls(&records)[0].3["rows"],
        1,
        "the rolled-back insert is still on record"
    );
}

/// A tenant with a chained log of `invocations` create-service calls
/// (one record each: the insert).
async fn chained_tenant(host: &Host, invocations: usize) -> TenantId {
    let tenant = tenant(&owner()).await;
    for i in 0..invocations {
        create_service(host, tenant, &format!("chained-{i}"), 30).await;
    }
    audit::chain_pending(host.pool()).await.unwrap();
    let verification = audit::verify(host.pool(), Some(tenant), &[]).await.unwrap();
    assert_eq!(
        verification.records, invocations as u64,
        "one record per insert"
    );
    assert!(
        verification.broken.is_empty(),
        "an untouched chain verifies: {:?}",
        verification.broken
    );
    tenant
}

async fn id_at(tenant: TenantId, seq: i64) -> i64 {
    sqlx::query_scalar("SELECT record_id FROM audit_links WHERE tenant_id = $1 AND chain_seq = $2")
        .bind(tenant.0)
        .bind(seq)
        .fetch_one(&owner())
        .await
        .unwrap()
}

async fn tamper(sql: &str, tenant: TenantId) {
    sqlx::raw_sql(&sql.replace("$TENANT", &format!("'{tenant}'")))
        .execute(&owner())
        .await
        .unwrap();
}

/// Tamper with `sql`, then verify: the first broken link, which must exist
/// (`what` names the tampering in the failure message).
async fn broken_by(host: &Host, tenant: TenantId, sql: &str, what: &str) -> audit::BrokenLink {
    tamper(sql, tenant).await;
    first_break(host, tenant, &[])
        .await
        .unwrap_or_else(|| panic!("{what} is not detected"))
}

async fn first_break(
    host: &Host,
    tenant: TenantId,
    checkpoints: &[audit::Checkpoint],
) -> Option<audit::BrokenLink> {
    let verification = audit::verify(host.pool(), Some(tenant), checkpoints)
        .await
        .unwrap();
    assert!(verification.broken.len() <= 1);
    verification.broken.into_iter().next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_the_record_after_each_kind_of_tampering() {
    let host = host(4).await;

    let updated = chained_tenant(&host, 6).await;
    let target = id_at(updated, 3).await;
    let broken = broken_by(
        &host,
        updated,
        "UPDATE audit_records SET lock_wait_us = 99 WHERE id = \
         (SELECT record_id FROM audit_links WHERE tenant_id = $TENANT AND chain_seq = 3)",
        "an UPDATE",
    )
    .await;
    assert_eq!(
        (broken.seq, broken.record_id),
        (3, Some(target)),
        "{broken:?}"
    );
    assert!(broken.reason.contains("modified"), "{broken:?}");

    let deleted = chained_tenant(&host, 6).await;
    let successor = id_at(deleted, 4).await;
    let broken = broken_by(
        &host,
        deleted,
        "WITH gone AS (DELETE FROM audit_links WHERE tenant_id = $TENANT AND chain_seq = 3 RETURNING record_id) \
         DELETE FROM audit_records WHERE id IN (SELECT record_id FROM gone)",
        "a DELETE",
    )
    .await;
    assert_eq!(
        (broken.seq, broken.record_id),
        (3, Some(successor)),
        "{broken:?}"
    );

    let inserted = chained_tenant(&host, 6).await;
    tamper(
        "WITH forged AS (INSERT INTO audit_records (tenant_id, invocation_id, attempt, executor, version, \
         outcome, calls, lock_wait_us, duration_us, recorded_at) \
         SELECT r.tenant_id, invocation_id, attempt, executor, version, outcome, calls, 5, duration_us, \
         recorded_at FROM audit_records r JOIN audit_links l ON l.record_id = r.id \
         WHERE l.tenant_id = $TENANT AND l.chain_seq = 3 RETURNING id) \
         INSERT INTO audit_links (tenant_id, chain_seq, record_id, prev_hash, hash) \
         SELECT tenant_id, 3, (SELECT id FROM forged), prev_hash, hash FROM audit_links \
         WHERE tenant_id = $TENANT AND chain_seq = 3",
        inserted,
    )
    .await;
    let forged: i64 = sqlx::query_scalar("SELECT max(id) FROM audit_records WHERE tenant_id = $1")
        .bind(inserted.0)
        .fetch_one(&owner())
        .await
        .unwrap();
    let broken = first_break(&host, inserted, &[])
        .await
        .expect("an INSERT in the middle is detected");
    assert_eq!(
        (broken.seq, broken.record_id),
        (4, Some(forged)),
        "{broken:?}"
    );

    let swapped = chained_tenant(&host, 6).await;
    let (second, third) = (id_at(swapped, 2).await, id_at(swapped, 3).await);
    let broken = broken_by(
        &host,
        swapped,
        "UPDATE audit_links SET chain_seq = CASE chain_seq WHEN 2 THEN 3 ELSE 2 END \
         WHERE tenant_id = $TENANT AND chain_seq IN (2, 3)",
        "a swap",
    )
    .await;
    assert_eq!(
        (broken.seq, broken.record_id),
        (2, Some(third)),
        "{broken:?} (second was {second})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_whose_record_was_deleted_is_named() {
    let host = host(4).await;
    let tenant = chained_tenant(&host, 4).await;
    let target = id_at(tenant, 2).await;
    let broken = broken_by(
        &host,
        tenant,
        "DELETE FROM audit_records WHERE id = \
         (SELECT record_id FROM audit_links WHERE tenant_id = $TENANT AND chain_seq = 2)",
        "a record deleted behind its link",
    )
    .await;
    assert_eq!((broken.seq, broken.record_id), (2, Some(target)));
    assert!(broken.reason.contains("gone"), "{broken:?}");
}

/// The record is literal SQL with dollar-quoted text: nothing an executor
/// can put in a call (here the tags themselves, quotes, backslashes, NUL)
/// may end a constant early or change what is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_stores_any_text_verbatim() {
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let hostile = "$a$ $a1$ $$ ' '' \\ \\' \u{0} E'x' $a$'); DROP TABLE audit_records; --";
    let call = audit::AuditCall {
        capability: "lock",
        table: Some(hostile.to_owned()),
        detail: bookhost::capabilities::audit::lock_detail(hostile),
        rows: 0,
        outcome: "ok".into(),
        error: Some(hostile.to_owned()),
        lock_wait_us: 0,
        duration_us: 0,
        at: chrono::Utc::now(),
    };
    // Names and versions are validated before they get here, and PostgreSQL
    // text cannot hold NUL; inside the calls' JSON it is an escape.
    let name = hostile.replace('\0', "");
    let invocation = uuid::Uuid::now_v7();
    let record = audit::AttemptAudit {
        tenant,
        invocation_id: invocation,
        attempt: 1,
        executor: &name,
        version: &name,
        outcome: audit::AttemptOutcome::Committed,
        duration_us: 1,
        proposal: None,
        replay_reason: None,
        calls: std::slice::from_ref(&call),
    };
    assert!(
        audit::append_sql(&record).contains("$a2$"),
        "a tag not in the text"
    );
    audit::append(host.pool(), &record).await.unwrap();
    let stored = records_of(&host, tenant, invocation).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].executor.as_str(), stored[0].version.as_str()),
        (name.as_str(), name.as_str())
    );
    let stored_call = &stored[0].calls[0];
    for field in [
        &stored_call["table"],
        &stored_call["error"],
        &stored_call["detail"]["key"],
    ] {
        assert_eq!(field.as_str(), Some(hostile));
    }
}

/// A host on a pool that did not prepare the audit's append cannot commit:
/// the attempt ends as a host failure that says what to fix, nothing it
/// wrote stays, and its record is still appended (on its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_without_the_prepared_append_fails_clearly_and_writes_nothing() {
    let plain = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(bookhost::db::app_options(&database()))
        .await
        .unwrap();
    let host = Host::new(plain, executors(), Default::default());
    let tenant = tenant(&owner()).await;
    let report = invoke(
        &host,
        tenant,
        CREATE_SERVICE,
        json!({"name": "unprepared", "duration_minutes": 30}),
    )
    .await;
    match &report.outcome {
        InvocationOutcome::HostFailure { message } => {
            assert!(message.contains("pool_options"), "{message}")
        }
        other => panic!("expected a host failure, got {other:?}"),
    }
    let services = services_of(tenant).await;
    assert_eq!(services, 0);
    let records = records_of(&host, tenant, report.invocation_id).await;
    assert_eq!(summary(&records), [triple("insert", "ok", "host_failure")]);
}

/// Ids are drawn when a record is appended but become visible when its
/// transaction commits, so a record can appear after one with a larger id
/// was linked. The chainer must still link it (a chainer that resumed after
/// the largest id it linked would leave it out of the chain for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_commits_late_is_still_chained() {
    let host = host(4).await;
    let tenant = tenant(&owner()).await;
    let record = |invocation_id| audit::AttemptAudit {
        tenant,
        invocation_id,
        attempt: 1,
        executor: "late",
        version: "0",
        outcome: audit::AttemptOutcome::Committed,
        duration_us: 1,
        proposal: None,
        replay_reason: None,
        calls: &[],
    };
    let (late, early) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    // The slow one appends as another role than the chainer's (the owner,
    // as an operator's tool might): the chainer must wait for it too.
    let appender = owner();
    let mut slow = appender.begin().await.unwrap();
    sqlx::raw_sql(&audit::append_sql(&record(late)))
        .execute(&mut *slow)
        .await
        .unwrap();
    audit::append(host.pool(), &record(early)).await.unwrap();
    audit::chain_pending(host.pool()).await.unwrap();
    audit::chain_pending(host.pool()).await.unwrap();
    slow.commit().await.unwrap();
    audit::chain_pending(host.pool()).await.unwrap();

    let verification = audit::verify(host.pool(), Some(tenant), &[]).await.unwrap();
    assert_eq!(
        (verification.records, verification.unchained),
        (2, 0),
        "both records are linked"
    );
    assert!(verification.broken.is_empty(), "{:?}", verification.broken);
    let chained: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT r.invocation_id FROM audit_links l JOIN audit_records r ON r.id = l.record_id \
         WHERE l.tenant_id = $1 ORDER BY l.chain_seq",
    )
    .bind(tenant.0)
    .fetch_all(&owner())
    .await
    .unwrap();
    assert_eq!(
        chained,
        [early, late],
        "linked in the order they became visible"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_catches_what_the_chain_alone_cannot() {
    let host = host(4).await;
    let tenant = chained_tenant(&host, 6).await;
    let checkpoint: Vec<_> = audit::checkpoint(host.pool())
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.tenant_id == tenant.0)
        .collect();
    assert_eq!(checkpoint.len(), 1);
    assert_eq!(checkpoint[0].seq, 6);
    // Truncating the newest records leaves a chain that is valid on its own.
    tamper(
        "WITH gone AS (DELETE FROM audit_links WHERE tenant_id = $TENANT AND chain_seq >= 5 RETURNING record_id) \
         DELETE FROM audit_records WHERE id IN (SELECT record_id FROM gone)",
        tenant,
    )
    .await;
    assert_eq!(first_break(&host, tenant, &[]).await, None);
    let broken = first_break(&host, tenant, &checkpoint)
        .await
        .expect("the checkpoint's head is gone");
    assert_eq!(broken.seq, 6);
    assert!(broken.reason.contains("checkpoint"), "{broken:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_show_replays_and_lock_waits_after_a_hot_slot() {
    let host = host(64).await;
    let tenant = tenant(&owner()).await;
    let service = create_service(&host, tenant, "hot", 60).await;
    let hot_slot = |executor: &'static str, day: u32| {
        let inputs = (0..64)
            .map(|i| json!({"service_id": service, "customer": format!("c{i}"), "start": format!("2030-07-{day:02}T10:00:00Z")}))
            .collect();
        concurrently(&host, tenant, executor, inputs)
    };
    hot_slot(CREATE_BOOKING_LOCKED, 1).await;
    // Whether a naive round replays depends on timing (a loser may instead
    // meet the exclusion constraint and answer at once); a few rounds do.
    // The TypeScript port checks with its own query (the Rust executor asks
    // the host's availability, whose losers rarely replay: they meet the
    // constraint).
    for day in 2..12 {
        let reports = hot_slot(CREATE_BOOKING_TS, day).await;
        if reports.iter().any(|r| r.attempts > 1) {
            break;
        }
    }
    let state = bookhost::api::AppState::new(host.clone(), bookhost::api::ServiceConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, bookhost::api::app(state)).into_future());
    let text = reqwest::get(format!("http://{address}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |prefix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    let replays = value("bookhost_replays_total{executor=\"create-booking-ts\"");
    let waits = value("bookhost_lock_wait_seconds_count{capability=\"lock\"");
    let oks =
        value("bookhost_invocations_total{executor=\"create-booking-locked\",outcome=\"ok\"}");
    println!("metrics after two hot slots: create-booking-ts replays {replays}, lock waits recorded {waits}");
    assert!(
        replays > 0.0,
        "naive executors on a hot slot replay:\n{text}"
    );
    assert!(waits > 0.0, "locking executors on a hot slot wait:\n{text}");
    assert_eq!(oks, 1.0, "one winner per hot slot");
}

/// Serve `config` over `host` on a free port; returns the base URL.
async fn serve(host: &Host, config: bookhost::api::ServiceConfig) -> String {
    let state = bookhost::api::AppState::new(host.clone(), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, bookhost::api::app(state)).into_future());
    format!("http://{address}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_policy_decides_grants_and_approval_unlocks_them() {
    use bookhost::capabilities::grant::{GrantMode, GrantPolicy};
    let host = host(4).await;
    let tenant = tenant(&owner()).await;
    let key = bookhost::db::keys::issue(host.pool(), tenant)
        .await
        .unwrap();
    let policy = GrantPolicy {
        mode: GrantMode::RequireApproval,
        deny: vec!["lock".into()],
    };
    let config = bookhost::api::ServiceConfig {
        operator_key: Some("operator-secret".into()),
        grant_policy: policy,
        ..Default::default()
    };
    let base = serve(&host, config).await;
    let http = reqwest::Client::new();
    let bytes = std::fs::read(components_dir().join("create-booking-locked.wasm")).unwrap();
    let uploaded: serde_json::Value = http
        .put(format!("{base}/v1/executors/create-booking-locked"))
        .bearer_auth(&key)
        .body(bytes)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        uploaded["grant"],
        json!({"requested": ["lock", "availability", "query:services", "insert:bookings"],
               "granted": [], "denied": ["lock"], "status": "pending-approval"})
    );

    let service = create_service(&host, tenant, "approved-later", 30).await;
    let booking = json!({"service_id": service, "customer": "c", "start": "2030-08-01T10:00:00Z"});
    let invoke = || {
        http.post(format!("{base}/v1/executors/create-booking-locked/invoke"))
            .bearer_auth(&key)
            .json(&booking)
            .send()
    };
    let refused: serde_json::Value = invoke().await.unwrap().json().await.unwrap();
    assert_eq!(
        refused["error"]["error"], "forbidden",
        "nothing is granted before approval: {refused}"
    );

    let approved: serde_json::Value = http
        .post(format!(
            "{base}/v1/tenants/{tenant}/executors/create-booking-locked/approve"
        ))
        .bearer_auth("operator-secret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        approved["granted"],
        json!(["availability", "query:services", "insert:bookings"])
    );
    assert_eq!(approved["status"], "granted");
    let grants: serde_json::Value = http
        .get(format!("{base}/v1/executors/create-booking-locked/grants"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(grants["denied"], json!(["lock"]));

    // The deny list still holds: the executor's `lock` call is refused.
    let still_denied: serde_json::Value = invoke().await.unwrap().json().await.unwrap();
    assert_eq!(
        still_denied["error"]["error"], "forbidden",
        "{still_denied}"
    );
    assert!(
        still_denied["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing grant lock"),
        "{still_denied}"
    );
    let invocation = still_denied["invocation_id"].as_str().unwrap();
    let view: serde_json::Value = http
        .get(format!("{base}/v1/invocations/{invocation}"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["attempts"][0]["outcome"], "rolled_back");
    assert_eq!(view["attempts"][0]["calls"][0]["capability"], "lock");
    assert_eq!(view["attempts"][0]["calls"][0]["outcome"], "denied");
}

/// A database chained before migration 0006 (chain fields on the records)
/// still verifies after it: the migration moves the links, and the hash of a
/// record is computed exactly as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_made_before_the_links_table_still_verify() {
    let (name, options) = scratch_database("upgrade").await;
    let before_links = sqlx::migrate::Migrator {
        migrations: bookhost::db::MIGRATOR
            .migrations
            .iter()
            .filter(|m| m.version < 20261123000006)
            .cloned()
            .collect::<Vec<_>>()
            .into(),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options.clone())
        .await
        .unwrap();
    before_links.run(&db).await.unwrap();
    let tenant = bookhost::db::create_tenant(&db, "upgraded").await.unwrap();
    for attempt in 1..=4 {
        sqlx::query(
            "INSERT INTO audit_records (tenant_id, invocation_id, attempt, executor, version, \
             outcome, calls, lock_wait_us, duration_us, recorded_at) \
             VALUES ($1, $2, $3, 'old', 'v0', 'committed', \
             '[{\"capability\": \"insert\", \"table\": \"services\", \"rows\": 1}]', 0, 7, now())",
        )
        .bind(tenant.0)
        .bind(uuid::Uuid::new_v4())
        .bind(attempt)
        .execute(&db)
        .await
        .unwrap();
    }
    // Chain the first three the way the chainer did before 0006.
    let old: Vec<AuditRecord> = sqlx::query_as(
        "SELECT id, tenant_id, invocation_id, attempt, executor, version, outcome, calls, \
         lock_wait_us, duration_us, recorded_at, chain_seq, hash, prev_hash \
         FROM audit_records ORDER BY id LIMIT 3",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let mut prev = vec![0u8; 32];
    for (seq, record) in (1..).zip(&old) {
        let hash = audit::record_hash(record, seq, &prev);
        sqlx::query(
            "UPDATE audit_records SET chain_seq = $1, prev_hash = $2, hash = $3 WHERE id = $4",
        )
        .bind(seq)
        .bind(&prev)
        .bind(&hash)
        .bind(record.id)
        .execute(&db)
        .await
        .unwrap();
        prev = hash;
    }
    bookhost::db::MIGRATOR.run(&db).await.unwrap();
    db.close().await;

    let db = bookhost::db::pool_options()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();
    let verification = audit::verify(&db, Some(tenant), &[]).await.unwrap();
    assert_eq!((verification.records, verification.unchained), (3, 1));
    assert!(verification.broken.is_empty(), "{:?}", verification.broken);
    audit::chain_pending(&db).await.unwrap();
    let verification = audit::verify(&db, Some(tenant), &[]).await.unwrap();
    assert_eq!((verification.records, verification.unchained), (4, 0));
    assert!(verification.broken.is_empty(), "{:?}", verification.broken);
    db.close().await;
    drop_database(&name).await;
}

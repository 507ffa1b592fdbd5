//! A tenant cannot read or write another tenant's rows through any capability.

use bookhost_tests::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_cannot_reach_another_tenants_rows() {
    let host = host(4).await;
    let victim = tenant(host.pool()).await;
    let attacker = tenant(host.pool()).await;
    let service = create_service(&host, victim, "victim-service", 60).await;
    let booking = invoke(
        &host,
        victim,
        "create-booking",
        json!({"service_id": service, "customer": "v", "start": "2030-01-01T09:00:00Z"}),
    )
    .await;
    ok_output(&booking);

    let report = invoke(
        &host,
        attacker,
        "fixture-faults",
        json!({"mode": "probe-tenant", "foreign_service_id": service}),
    )
    .await;
    let probes = ok_output(&report);
    assert_eq!(
        probes,
        &json!({
            "query_by_id": 0,
            "update_by_id": 0,
            "delete_by_id": 0,
            "query_tenant_column": "forbidden",
            "insert_tenant_column": "forbidden",
            "insert_foreign_reference": "conflict:bookings_service_fk",
            "unknown_table": "not-found",
            "odd_column": "invalid",
        })
    );

    let (name, bookings): (String, i64) = sqlx::query_as(
        "SELECT s.name, (SELECT count(*) FROM bookings b WHERE b.tenant_id = s.tenant_id AND b.service_id = s.id) \
         FROM services s WHERE s.tenant_id = $1 AND s.id = $2::uuid",
    )
    .bind(victim.0)
    .bind(&service)
    .fetch_one(host.pool())
    .await
    .unwrap();
    assert_eq!(
        (name.as_str(), bookings),
        ("victim-service", 1),
        "the victim's rows are untouched"
    );
    let attacker_rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM services WHERE tenant_id = $1) + (SELECT count(*) FROM bookings WHERE tenant_id = $1)",
    )
    .bind(attacker.0)
    .fetch_one(host.pool())
    .await
    .unwrap();
    assert_eq!(
        attacker_rows, 0,
        "nothing was written for the attacker either"
    );
}

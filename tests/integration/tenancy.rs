//! Tenants are kept apart by two walls, each proven on its own: the host's
//! scoping of every statement, and row-level security under a role that
//! cannot bypass it. A control with both walls down shows the probes see.

use bookhost::capabilities::transaction::TransactionSettings;
use bookhost::runtime::DisciplineSettings;
use bookhost::{Host, HostSettings, TenantId};
use bookhost_tests::executors::*;
use bookhost_tests::*;
use serde_json::{json, Value};

/// The payload the fixture puts into every string field (plugins/fixture-faults).
const PAYLOAD: &str =
    "x'); SELECT set_config('bookhost.tenant', '00000000-0000-0000-0000-000000000000', false); --";

/// A host whose statements carry no tenant predicate (test-only), on `pool`.
fn unscoped_host(pool: sqlx::PgPool) -> Host {
    let settings = HostSettings {
        discipline: DisciplineSettings {
            transaction: TransactionSettings {
                scope_to_tenant: false,
                ..TransactionSettings::default()
            },
            ..DisciplineSettings::default()
        },
        ..HostSettings::default()
    };
    Host::new(pool, executors(), settings)
}

/// A pool that row-level security does not stop: the owner, a superuser.
/// Checked, so that "RLS off" cannot silently mean "RLS on".
async fn pool_past_rls() -> sqlx::PgPool {
    let pool = owner_with(4);
    let facts = bookhost::db::role_facts(&pool).await.unwrap();
    assert!(facts.superuser, "the owner pool must bypass RLS: {facts:?}");
    pool
}

struct Probe {
    victim: TenantId,
    attacker: TenantId,
    service: String,
    result: Value,
}

/// A victim with a service and a booking; an attacker runs every probe.
/// `db` is the owner's pool of the database `host` works on.
async fn probe(host: &Host, db: &sqlx::PgPool) -> Probe {
    let victim = tenant(db).await;
    let attacker = tenant(db).await;
    let service = create_service(host, victim, "victim-service", 60).await;
    let booking = invoke(
        host,
        victim,
        CREATE_BOOKING,
        json!({"service_id": service, "customer": "v", "start": "2030-01-01T09:00:00Z"}),
    )
    .await;
    ok_output(&booking);
    let report = invoke(
        host,
        attacker,
        FIXTURE_FAULTS,
        json!({"mode": "probe-tenant", "foreign_service_id": service}),
    )
    .await;
    Probe {
        victim,
        attacker,
        service,
        result: ok_output(&report).clone(),
    }
}

/// What every probe must find while at least one wall stands.
fn walled_off() -> Value {
    let not_found = json!("not-found");
    json!({
        "query_by_id": 0,
        "query_in_list": 0,
        "query_every_service": 0,
        "query_ne": 0,
        "query_bookings_of_service": 0,
        "query_quote_value": 0,
        "update_by_id": 0,
        "update_in_list": 0,
        "update_tenant_column": "forbidden",
        "delete_by_id": 0,
        "delete_every_booking": 0,
        "query_tenant_column": "forbidden",
        "order_by_tenant_column": "forbidden",
        "insert_tenant_column": "forbidden",
        "insert_foreign_reference": "conflict:bookings_service_fk",
        "unknown_table": "not-found",
        "odd_column": "invalid",
        "tables": {
            "pg_catalog.pg_authid": not_found, "pg_class": not_found,
            "information_schema.tables": not_found, "public.services": not_found,
            "\"services\"": not_found, "services\"": not_found, "SERVICES": not_found,
            "services; --": not_found, "tenants": not_found, "api_keys": not_found,
            "audit_records": not_found,
        },
        "columns": {
            "\"tenant_id\"": "invalid", "TENANT_ID": "invalid", "tenant_id ": "invalid",
            "services.tenant_id": "invalid", "name\"": "invalid", "id) OR (1=1": "invalid",
            "ctid": "invalid",
        },
        "payload_in": {
            "table": "not-found",
            "condition_column": "invalid",
            "order_column": "invalid",
            "field_column": "invalid",
            "condition_text": 0,
            "condition_uuid": "invalid",
            "condition_json": 0,
            "lock_key": "ok",
            "insert_text": "ok",
            "insert_json": "ok",
            "insert_malformed_json": "invalid",
        },
        "query_by_id_after_payloads": 0,
    })
}

/// The victim's rows are as they were, the attacker holds exactly what the
/// payload probes stored for it, verbatim, and the host serves the attacker
/// normally right after.
async fn assert_untouched(host: &Host, probe: &Probe) {
    let db = owner();
    let db = &db;
    let (name, bookings): (String, i64) = sqlx::query_as(
        "SELECT s.name, (SELECT count(*) FROM bookings b WHERE b.tenant_id = s.tenant_id AND b.service_id = s.id \
                         AND b.status = 'confirmed') \
         FROM services s WHERE s.tenant_id = $1 AND s.id = $2::uuid",
    )
    .bind(probe.victim.0)
    .bind(&probe.service)
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!(
        (name.as_str(), bookings),
        ("victim-service", 1),
        "the victim's rows are untouched"
    );
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM services WHERE tenant_id = $1 ORDER BY name")
            .bind(probe.attacker.0)
            .fetch_all(db)
            .await
            .unwrap();
    assert_eq!(
        names,
        [PAYLOAD],
        "the payload was stored as a name, nothing else"
    );
    let pages: Vec<(String, Value)> = sqlx::query_as(
        "SELECT slug, config FROM storefront_pages WHERE tenant_id = $1 ORDER BY slug",
    )
    .bind(probe.attacker.0)
    .fetch_all(db)
    .await
    .unwrap();
    assert_eq!(
        pages,
        [(
            "probe".to_string(),
            json!({"sections": [], "tenant_id": probe.service, "p": PAYLOAD})
        )]
    );
    let attacker_bookings: i64 =
        sqlx::query_scalar("SELECT count(*) FROM bookings WHERE tenant_id = $1")
            .bind(probe.attacker.0)
            .fetch_one(db)
            .await
            .unwrap();
    assert_eq!(attacker_bookings, 0);
    let after = create_service(host, probe.attacker, "after-the-probe", 30).await;
    assert_eq!(after.len(), 36);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_walls_keep_tenants_apart() {
    let host = host(4).await;
    let probe = probe(&host, &owner()).await;
    assert_eq!(probe.result, walled_off());
    assert_untouched(&host, &probe).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_scoping_alone_keeps_tenants_apart() {
    // Row-level security off: the host runs as a superuser, which bypasses it.
    let host = Host::new(pool_past_rls().await, executors(), HostSettings::default());
    let probe = probe(&host, &owner()).await;
    assert_eq!(probe.result, walled_off());
    assert_untouched(&host, &probe).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_level_security_alone_keeps_tenants_apart() {
    let host = unscoped_host(pool(4).await);
    let probe = probe(&host, &owner()).await;
    assert_eq!(probe.result, walled_off());
    assert_untouched(&host, &probe).await;
}

/// The control: with both walls down the same probes reach the victim, so
/// the tests above would notice a wall falling. In a database of its own:
/// with no wall, its match-everything probes would reach every other test's
/// rows too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_both_walls_down_the_probes_reach_foreign_rows() {
    let (name, options) = scratch_database("control").await;
    bookhost::db::migrate(options.clone()).await.unwrap();
    let db = bookhost::db::pool_options()
        .max_connections(4)
        .connect_with(options)
        .await
        .unwrap();
    let facts = bookhost::db::role_facts(&db).await.unwrap();
    assert!(facts.superuser, "the owner pool must bypass RLS: {facts:?}");
    let host = unscoped_host(db.clone());
    let probe = probe(&host, &db).await;
    let result = &probe.result;
    assert_eq!(result["query_by_id"], 1, "{result}");
    assert_eq!(result["query_in_list"], 1, "{result}");
    assert_eq!(result["query_bookings_of_service"], 1, "{result}");
    assert_eq!(result["query_every_service"], 1, "{result}");
    assert_eq!(result["update_by_id"], 1, "{result}");
    assert_eq!(result["delete_by_id"], 1, "{result}");
    let name_now: String =
        sqlx::query_scalar("SELECT name FROM services WHERE tenant_id = $1 AND id = $2::uuid")
            .bind(probe.victim.0)
            .bind(&probe.service)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(name_now, "hacked");
    db.close().await;
    host.pool().close().await;
    drop_database(&name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_level_security_is_in_force_for_every_catalog_table() {
    let host = host(2).await;
    let facts = bookhost::db::role_facts(host.pool()).await.unwrap();
    assert_eq!(
        facts,
        bookhost::db::RoleFacts {
            role: bookhost::db::APP_ROLE.into(),
            superuser: false,
            bypasses_rls: false,
            owned_tables: 0,
        }
    );
    for table in bookhost::db::catalog::TABLES {
        let (enabled, forced, policies): (bool, bool, i64) = sqlx::query_as(
            "SELECT c.relrowsecurity, c.relforcerowsecurity, \
                    (SELECT count(*) FROM pg_policies p WHERE p.schemaname = 'public' AND p.tablename = c.relname \
                       AND p.qual LIKE '%bookhost.tenant%' AND p.with_check LIKE '%bookhost.tenant%') \
             FROM pg_class c WHERE c.oid = format('public.%I', $1::text)::regclass",
        )
        .bind(table.name)
        .fetch_one(&owner())
        .await
        .unwrap();
        assert_eq!(
            (enabled, forced, policies),
            (true, true, 1),
            "{}: RLS enabled, forced, one tenant policy",
            table.name
        );
    }
    // The host's own tenant tables under the same policy (executors cannot
    // name them: they are not in the catalog).
    for table in ["proposals"] {
        let (enabled, forced, policies): (bool, bool, i64) = sqlx::query_as(
            "SELECT c.relrowsecurity, c.relforcerowsecurity, \
                    (SELECT count(*) FROM pg_policies p WHERE p.schemaname = 'public' AND p.tablename = c.relname \
                       AND p.qual LIKE '%bookhost.tenant%' AND p.with_check LIKE '%bookhost.tenant%') \
             FROM pg_class c WHERE c.oid = format('public.%I', $1::text)::regclass",
        )
        .bind(table)
        .fetch_one(&owner())
        .await
        .unwrap();
        assert_eq!((enabled, forced, policies), (true, true, 1), "{table}");
    }
    // A new table with a tenant column must either join the catalog (and so
    // the check above) or be named here as the host's own bookkeeping.
    let tenant_tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND column_name = 'tenant_id' ORDER BY 1",
    )
    .fetch_all(&owner())
    .await
    .unwrap();
    let catalog: Vec<&str> = bookhost::db::catalog::TABLES
        .iter()
        .map(|t| t.name)
        .collect();
    let bookkeeping = [
        "api_keys",
        "audit_links",
        "audit_records",
        "audit_verifications",
        "executor_versions",
        "executors",
        "idempotency_keys",
        "proposals",
    ];
    for table in &tenant_tables {
        assert!(
            catalog.contains(&table.as_str()) || bookkeeping.contains(&table.as_str()),
            "table {table} has a tenant column but neither RLS nor a place in the bookkeeping list"
        );
    }
    // The host may append to the audit and link it, never rewrite or delete it.
    for statement in [
        "UPDATE audit_records SET outcome = 'committed'",
        "DELETE FROM audit_records",
        "TRUNCATE audit_records",
        "UPDATE audit_links SET chain_seq = 1",
        "DELETE FROM audit_links",
        "TRUNCATE audit_links",
    ] {
        let error = sqlx::query(statement)
            .execute(host.pool())
            .await
            .expect_err(statement);
        assert_eq!(
            error.as_database_error().and_then(|e| e.code()).as_deref(),
            Some("42501"),
            "{statement}: {error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_tenant_setting_fails_closed() {
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let other = bookhost_tests::tenant(&owner()).await;
    let service = create_service(&host, tenant, "walled", 30).await;
    let visible = |setting: Option<String>| {
        let pool = host.pool().clone();
        let service = service.clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            if let Some(setting) = setting {
                sqlx::query("SELECT set_config('bookhost.tenant', $1, true)")
                    .bind(setting)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM services WHERE id = $1::uuid")
                .bind(service)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            n
        }
    };
    assert_eq!(visible(Some(tenant.to_string())).await, 1);
    assert_eq!(visible(None).await, 0, "no setting: nothing visible");
    assert_eq!(visible(Some(String::new())).await, 0, "empty setting");
    assert_eq!(visible(Some(other.to_string())).await, 0, "another tenant");

    let insert = sqlx::query(
        "INSERT INTO services (tenant_id, name, duration_minutes) VALUES ($1, 'sneaked', 30)",
    )
    .bind(tenant.0)
    .execute(host.pool())
    .await
    .expect_err("an insert without the tenant setting");
    assert_eq!(
        insert.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("42501"),
        "{insert}"
    );
    assert!(
        insert.to_string().contains("row-level security"),
        "{insert}"
    );
    let updated = sqlx::query("UPDATE services SET name = 'renamed' WHERE id = $1::uuid")
        .bind(&service)
        .execute(host.pool())
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(updated, 0);
    let name: String = sqlx::query_scalar("SELECT name FROM services WHERE id = $1::uuid")
        .bind(&service)
        .fetch_one(&owner())
        .await
        .unwrap();
    assert_eq!(name, "walled");
}

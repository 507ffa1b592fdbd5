//! Property tests, bounded so CI runs them every time: mutated uploads and
//! arbitrary host-call arguments always end as a typed result, never a panic,
//! a leaked value in SQL text, or an untyped database failure.
//!
//! Case counts default to hundreds or thousands (seconds in all); `PROPTEST_CASES=N` raises them for a
//! longer hunt. A failure prints the minimal input proptest shrank it to.

use std::sync::Arc;

use bookhost::bindings::{CallError, Condition, Field, Operator, OrderBy, Value};
use bookhost::capabilities::transaction::{InvocationTransaction, LockPlan, TransactionSettings};
use bookhost::capabilities::{CapabilityError, Doom};
use bookhost::db::{catalog, sql};
use bookhost::runtime::{EngineSettings, ExecutorEngine, ExecutorRegistry};
use bookhost::TenantId;
use bookhost_tests::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Text values carry this marker: if it ever shows in SQL text, a value was
/// spliced into the statement instead of bound.
const MARK: &str = "zq";

fn cases(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Run `body` on a thread with a large stack: the strategies' values and the
/// capability futures are big in the unoptimized test profile, and the
/// default 2 MiB test thread overflows.
fn with_big_stack(body: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(body)
        .unwrap()
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
}

fn known_tables() -> Vec<String> {
    catalog::TABLES.iter().map(|t| t.name.to_string()).collect()
}

fn known_columns() -> Vec<String> {
    let mut columns: Vec<String> = catalog::TABLES
        .iter()
        .flat_map(|t| t.column_names())
        .map(String::from)
        .collect();
    columns.push("tenant_id".into());
    columns.sort();
    columns.dedup();
    columns
}

fn table_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(known_tables()),
        1 => prop::sample::select(vec![
            "pg_authid".to_string(), "tenants".into(), "audit_records".into(),
            "services\"".into(), "public.services".into(), String::new(),
        ]),
        1 => any::<String>(),
    ]
}

fn column_name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(known_columns()),
        1 => "[a-z_\"';() .-]{0,12}",
        1 => any::<String>(),
    ]
}

fn marked_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,40}",
        Just("x'); SELECT set_config('bookhost.tenant', '', false); --".to_string()),
        Just("\0".to_string()),
    ]
    .prop_map(|s| format!("{MARK}{s}{MARK}"))
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Boolean),
        prop_oneof![any::<i64>(), -5i64..2000].prop_map(Value::Integer),
        any::<f64>().prop_map(Value::Float),
        marked_text().prop_map(Value::Text),
        prop_oneof![
            any::<i64>(),
            // Around now, and the edges of PostgreSQL's timestamp range.
            1_700_000_000_000_000i64..1_900_000_000_000_000,
            Just(-210_866_803_200_000_000i64),
            Just(9_224_318_015_999_999i64),
        ]
        .prop_map(Value::Timestamp),
        prop_oneof![
            marked_text(),
            Just(format!("{{\"sections\": [], \"{MARK}\": \"\\u0000\"}}")),
            Just(format!("{{\"sections\": [{{\"id\": \"{MARK}\"}}]}}")),
            Just("[1, 2".to_string()),
            Just("1e999999".to_string()),
        ]
        .prop_map(Value::Json),
        prop_oneof![
            any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
            marked_text(),
        ]
        .prop_map(Value::Uuid),
    ]
}

fn operator() -> impl Strategy<Value = Operator> {
    prop_oneof![
        value().prop_map(Operator::Eq),
        value().prop_map(Operator::Ne),
        value().prop_map(Operator::Lt),
        value().prop_map(Operator::Le),
        value().prop_map(Operator::Gt),
        value().prop_map(Operator::Ge),
        prop::collection::vec(value(), 0..6).prop_map(Operator::In),
        Just(Operator::IsNull),
        Just(Operator::IsNotNull),
    ]
}

fn conditions() -> impl Strategy<Value = Vec<Condition>> {
    prop::collection::vec(
        (column_name(), operator()).prop_map(|(column, op)| Condition { column, op }),
        0..4,
    )
}

fn fields() -> impl Strategy<Value = Vec<Field>> {
    prop::collection::vec(
        (column_name(), value()).prop_map(|(column, value)| Field { column, value }),
        0..5,
    )
}

fn order() -> impl Strategy<Value = Vec<OrderBy>> {
    prop::collection::vec(
        (column_name(), any::<bool>())
            .prop_map(|(column, descending)| OrderBy { column, descending }),
        0..3,
    )
}

/// One capability call an executor could make.
#[derive(Debug, Clone)]
enum Call {
    Query(String, Vec<Condition>, Vec<OrderBy>, Option<u32>),
    Insert(String, Vec<Field>),
    Update(String, Vec<Condition>, Vec<Field>),
    Delete(String, Vec<Condition>),
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        (
            table_name(),
            conditions(),
            order(),
            prop::option::of(0u32..2000)
        )
            .prop_map(|(t, c, o, l)| Call::Query(t, c, o, l)),
        (table_name(), fields()).prop_map(|(t, f)| Call::Insert(t, f)),
        (table_name(), conditions(), fields()).prop_map(|(t, c, f)| Call::Update(t, c, f)),
        (table_name(), conditions()).prop_map(|(t, c)| Call::Delete(t, c)),
    ]
}

/// A built statement: no marked value in its text, the tenant predicate in
/// its WHERE clause (when it has one).
fn check_statement(statement: &sql::Statement, scoped: bool) -> Result<(), TestCaseError> {
    let text = &statement.0;
    prop_assert!(!text.contains(MARK), "a value reached the SQL text: {text}");
    if scoped {
        // The first WHERE term, so no OR of the executor's can loosen it.
        let after_where = text.split_once(" WHERE ").map(|(_, rest)| rest);
        let tenant_term = after_where.and_then(|rest| rest.strip_prefix("\"tenant_id\" = $"));
        prop_assert!(
            tenant_term.is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit())),
            "no tenant predicate first: {text}"
        );
    }
    Ok(())
}

#[test]
fn statement_building_binds_every_value_and_always_scopes() {
    with_big_stack(|| {
        let tenant = TenantId(uuid::Uuid::new_v4());
        let mut runner = TestRunner::new(cases(4096));
        runner
            .run(&call(), |call| {
                let name = match &call {
                    Call::Query(t, ..)
                    | Call::Insert(t, _)
                    | Call::Update(t, ..)
                    | Call::Delete(t, _) => t,
                };
                let table = match sql::resolve_table(name) {
                    Ok(table) => table,
                    Err(CallError::NotFound(_)) => return Ok(()),
                    Err(other) => return Err(TestCaseError::fail(format!("{other:?}"))),
                };
                let built = match &call {
                    Call::Query(_, conditions, order, _) => {
                        sql::select(table, Some(tenant), conditions, order, 10).map(|s| (s, true))
                    }
                    Call::Insert(_, fields) => sql::writes(table, fields)
                        .and_then(|writes| sql::insert(table, tenant, writes))
                        .map(|s| (s, false)),
                    Call::Update(_, conditions, fields) => sql::writes(table, fields)
                        .and_then(|writes| {
                            sql::update(table, Some(tenant), conditions, writes, true)
                        })
                        .map(|s| (s, true)),
                    Call::Delete(_, conditions) => {
                        sql::delete(table, Some(tenant), conditions, true).map(|s| (s, true))
                    }
                };
                match built {
                    Ok((statement, scoped)) => check_statement(&statement, scoped),
                    // Every refusal is one of the typed kinds an executor handles.
                    Err(
                        CallError::Invalid(m) | CallError::Forbidden(m) | CallError::NotFound(m),
                    ) => {
                        prop_assert!(!m.is_empty());
                        Ok(())
                    }
                    Err(other) => Err(TestCaseError::fail(format!("unexpected {other:?}"))),
                }
            })
            .unwrap();
    });
}

/// Arbitrary call sequences on a real transaction as the host's role: each
/// call ends ok or with a typed error (never a doomed attempt, which would
/// mean a database error the host did not understand), and the transaction
/// stays usable after every refusal.
#[test]
fn arbitrary_calls_on_a_real_transaction_end_typed() {
    with_big_stack(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (pool, tenant) = runtime.block_on(async {
            let pool = pool(2).await;
            let tenant = tenant(&owner()).await;
            (pool, tenant)
        });
        let settings = Arc::new(TransactionSettings::default());
        let mut runner = TestRunner::new(cases(1024));
        runner
            .run(&prop::collection::vec(call(), 1..5), |calls| {
                runtime.block_on(async {
                    let mut tx = InvocationTransaction::new(
                        Some(pool.acquire().await.unwrap()),
                        tenant,
                        settings.clone(),
                        LockPlan::default(),
                    );
                    let mut outcome = Ok(());
                    for call in &calls {
                        let result = match call {
                            Call::Query(t, c, o, l) => tx.query(t, c, o, *l).await.map(|_| ()),
                            Call::Insert(t, f) => tx.insert(t, f).await.map(|_| ()),
                            Call::Update(t, c, f) => tx.update(t, c, f).await.map(|_| ()),
                            Call::Delete(t, c) => tx.delete(t, c).await.map(|_| ()),
                        };
                        match result {
                            Ok(()) | Err(CapabilityError::Call(_) | CapabilityError::Denied(_)) => {
                            }
                            Err(CapabilityError::Abort(Doom::Limit { .. })) => break,
                            Err(CapabilityError::Abort(doom)) => {
                                outcome =
                                    Err(TestCaseError::fail(format!("{call:?} doomed: {doom}")));
                                break;
                            }
                        }
                        // Still usable: the refusal rolled back to its savepoint.
                        if let Err(e) = tx.query("services", &[], &[], Some(1)).await {
                            outcome = Err(TestCaseError::fail(format!(
                                "after {call:?} the transaction is unusable: {e:?}"
                            )));
                            break;
                        }
                    }
                    tx.rollback().await;
                    outcome
                })
            })
            .unwrap();
    });
}

/// Byte-level mutations of a real executor: every upload is either accepted
/// as a working executor or refused with a message, and the host lives on.
#[test]
fn mutated_uploads_are_accepted_or_refused_with_a_message() {
    with_big_stack(|| {
        let original = std::fs::read(components_dir().join("create-service.wasm"))
            .expect("run plugins/build.sh");
        let len = original.len();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // A registry of its own: a mutant that still loads must not replace the
        // real create-service other tests run.
        let registry = ExecutorRegistry::new(
            ExecutorEngine::new(EngineSettings {
                max_instances: 8,
                ..EngineSettings::default()
            })
            .unwrap(),
        )
        .unwrap();
        #[derive(Debug, Clone)]
        enum Mutation {
            FlipBit(usize, u8),
            SetByte(usize, u8),
            Delete(usize, usize),
            Insert(usize, Vec<u8>),
            Truncate(usize),
        }
        let mutation = prop_oneof![
            4 => (0..len, 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
            // The header and section table, where structure lives.
            2 => (0..64usize.min(len), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
            2 => (0..len, any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
            1 => (0..len, 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
            1 => (0..len, prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Mutation::Insert(i, b)),
            1 => (0..len).prop_map(Mutation::Truncate),
        ];
        let (accepted, refused) = (
            std::sync::atomic::AtomicU32::new(0),
            std::sync::atomic::AtomicU32::new(0),
        );
        let mut runner = TestRunner::new(cases(256));
        runner
            .run(&prop::collection::vec(mutation, 1..4), |mutations| {
                let mut bytes = original.clone();
                for mutation in &mutations {
                    match *mutation {
                        Mutation::FlipBit(i, bit) if i < bytes.len() => bytes[i] ^= 1 << bit,
                        Mutation::SetByte(i, b) if i < bytes.len() => bytes[i] = b,
                        Mutation::Delete(i, n) if i < bytes.len() => {
                            bytes.drain(i..(i + n).min(bytes.len()));
                        }
                        Mutation::Insert(i, ref b) if i <= bytes.len() => {
                            bytes.splice(i..i, b.iter().copied());
                        }
                        Mutation::Truncate(n) => bytes.truncate(n),
                        _ => {}
                    }
                }
                match runtime.block_on(registry.load(&bytes)) {
                    Ok(loaded) => {
                        accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        prop_assert!(!loaded.description.trim().is_empty());
                        Ok(())
                    }
                    Err(rejected) => {
                        refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        prop_assert!(!rejected.to_string().is_empty());
                        Ok(())
                    }
                }
            })
            .unwrap();
        println!(
            "mutated uploads: {} accepted (still a valid executor), {} refused with a message",
            accepted.into_inner(),
            refused.into_inner()
        );
    });
}

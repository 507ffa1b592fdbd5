//! Recorded histories of client operations against a fleet of hosts, and the checker that holds them against the database.
//!
//! A [`Client`] runs [`Operation`]s the way a careful real client would:
//! each with an `Idempotency-Key` of its own, retried with the same key on
//! the next host after a dropped connection, a timeout, a `5xx`, a `429` or
//! a key still in progress. Every try is kept, and each operation ends
//! [`Outcome::Ok`], [`Outcome::Fail`] (a definite refusal) or
//! [`Outcome::Unknown`] (no definite answer within the bounds).
//!
//! [`check`] then reads the database as the owner and reports what a
//! Jepsen-style checker would: acknowledged operations applied exactly
//! once, refused ones never, unknown ones all or nothing, the scenario's
//! invariants, the audit (every commit recorded, the chain intact), and
//! nothing left behind (advisory locks, sessions idle in a transaction).

mod check;

pub use check::{check, CheckReport, Invariant};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A fresh marker (`op-<n>`), unique in this test process: put it in an
/// operation's input where the operation's rows keep it, so the checker
/// can find what the operation did.
pub fn marker() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("op-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// What an operation leaves in the database if it takes effect, so the
/// checker can count how many times it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Rows of the tenant's `table` whose text `column` equals `value`
    /// (the operation's marker): 1 if it took effect, 0 if not, more if it
    /// was applied twice. `table` and `column` are trusted identifiers.
    /// Counted at check time: if a later operation may delete the row,
    /// record this one [`Effect::Unobservable`] instead.
    Rows {
        table: &'static str,
        column: &'static str,
        value: String,
    },
    /// Storefront page sections (any page of the tenant) whose `by` member
    /// is `value`.
    Section { by: String },
    /// The operation deletes row `id` of `table`. It took effect when the
    /// row is gone and the key's stored answer says it committed (a delete
    /// leaves no row to count, and two deletes of one row look like one).
    Removes { table: &'static str, id: String },
    /// Nothing the checker can count (reads); only the stored answer and
    /// the audit are checked.
    Unobservable,
}

/// One client operation: an invocation with its own Idempotency-Key.
#[derive(Debug, Clone)]
pub struct Operation {
    pub executor: String,
    pub input: Value,
    pub idempotency_key: String,
    pub effect: Effect,
}

impl Operation {
    /// An invocation of `executor` on `input`, with a fresh key.
    pub fn new(executor: &str, input: Value, effect: Effect) -> Self {
        Self {
            executor: executor.to_owned(),
            input,
            idempotency_key: uuid::Uuid::new_v4().to_string(),
            effect,
        }
    }

    /// create-service, named by a fresh marker.
    pub fn create_service(executor: &str, duration_minutes: i64) -> Self {
        let name = marker();
        Self::new(
            executor,
            json!({"name": name, "duration_minutes": duration_minutes}),
            Effect::Rows {
                table: "services",
                column: "name",
                value: name,
            },
        )
    }

    /// create-booking (or a port of it) of `service_id` at `start`
    /// (RFC 3339), the customer a fresh marker.
    pub fn create_booking(executor: &str, service_id: &str, start: &str) -> Self {
        let customer = marker();
        Self::new(
            executor,
            json!({"service_id": service_id, "customer": customer, "start": start}),
            Effect::Rows {
                table: "bookings",
                column: "customer",
                value: customer,
            },
        )
    }

    /// delete-service (or a port of it) of `service_id`.
    pub fn delete_service(executor: &str, service_id: &str) -> Self {
        Self::new(
            executor,
            json!({"service_id": service_id}),
            Effect::Removes {
                table: "services",
                id: service_id.to_owned(),
            },
        )
    }

    /// request-appointment (or a port of it) for `pet`, the customer a
    /// fresh marker.
    pub fn request_appointment(executor: &str, pet: &str, preferred_start: &str) -> Self {
        let customer = marker();
        Self::new(
            executor,
            json!({"customer": customer, "pet": pet, "preferred_start": preferred_start}),
            Effect::Rows {
                table: "booking_requests",
                column: "customer",
                value: customer,
            },
        )
    }

    /// update-page-section (or a port of it): section `section_id` on
    /// `page`, its `by` member a fresh marker.
    pub fn add_section(executor: &str, page: &str, section_id: &str) -> Self {
        let by = marker();
        Self::new(
            executor,
            json!({"page": page, "section": {"id": section_id, "kind": "banner", "by": by}}),
            Effect::Section { by },
        )
    }

    /// The marker the checker looks for (`None` for deletes and reads).
    pub fn marker(&self) -> Option<&str> {
        match &self.effect {
            Effect::Rows { value, .. } => Some(value),
            Effect::Section { by } => Some(by),
            Effect::Removes { .. } | Effect::Unobservable => None,
        }
    }
}

/// How a try ended without an HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// No answer within the client's timeout.
    Timeout,
    /// The connection could not be made (host down).
    Connect,
    /// The connection broke (before or while the answer came).
    Broken,
}

/// One HTTP try of an operation.
#[derive(Debug, Clone, Default)]
pub struct Try {
    /// Index of the host it went to.
    pub host: usize,
    /// When it was sent, from the operation's start.
    pub at: Duration,
    pub elapsed: Duration,
    /// The HTTP status, if an answer came.
    pub status: Option<u16>,
    pub transport: Option<Transport>,
    /// The problem's slug, for `application/problem+json` answers.
    pub problem: Option<String>,
    /// The problem's detail, or the transport error.
    pub detail: Option<String>,
    /// The answer was a stored one (`Idempotent-Replayed: true`).
    pub replayed: bool,
    pub retry_after: Option<Duration>,
}

impl Try {
    /// `200`, `503 host-failure`, `timeout`, ...: for tallies.
    pub fn label(&self) -> String {
        match (self.status, self.transport) {
            (Some(status), _) => match &self.problem {
                Some(slug) if status >= 400 => format!("{status} {slug}"),
                _ => status.to_string(),
            },
            (None, Some(Transport::Timeout)) => "timeout".into(),
            (None, Some(Transport::Connect)) => "connect-error".into(),
            (None, _) => "connection-broken".into(),
        }
    }
}

/// How an operation ended for its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// `200` with the executor's result: the client was told it committed.
    Ok,
    /// A definite refusal (a `4xx` other than `409 idempotency-key-in-progress`
    /// and `429`): the client was told nothing was written.
    Fail,
    /// No definite answer within the retry bounds.
    Unknown,
}

/// An operation, every try of it, and how it ended.
#[derive(Debug, Clone)]
pub struct Record {
    pub op: Operation,
    pub tries: Vec<Try>,
    pub outcome: Outcome,
    /// The status and JSON body of the definite answer (Ok, Fail).
    pub status: Option<u16>,
    pub body: Option<Value>,
    /// When the first try was sent (tries' `at` count from it): to place them against faults.
    pub started: Instant,
    pub elapsed: Duration,
}

impl Record {
    /// The invocation id the definite answer carried.
    pub fn invocation_id(&self) -> Option<uuid::Uuid> {
        self.body.as_ref()?["invocation_id"].as_str()?.parse().ok()
    }

    /// The executor's result (Ok).
    pub fn result(&self) -> Option<&Value> {
        self.body.as_ref()?.get("result")
    }

    /// The executor's error code (`error.error`), or the problem slug, of a Fail.
    pub fn error_code(&self) -> Option<&str> {
        let body = self.body.as_ref()?;
        body.get("error")
            .and_then(|e| e.get("error"))
            .and_then(Value::as_str)
            .or_else(|| body["type"].as_str()?.strip_prefix("urn:bookhost:problem:"))
    }

    /// `ok`, `fail:<code>` or `unknown`: for tallies.
    pub fn label(&self) -> String {
        match self.outcome {
            Outcome::Ok => "ok".into(),
            Outcome::Fail => format!("fail:{}", self.error_code().unwrap_or("?")),
            Outcome::Unknown => "unknown".into(),
        }
    }

    /// It needed more than one try.
    pub fn retried(&self) -> bool {
        self.tries.len() > 1
    }
}

/// Recorded operations, in the order they were started.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub records: Vec<Record>,
}

impl History {
    pub fn extend(&mut self, other: History) {
        self.records.extend(other.records);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Operations that ended `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.records.iter().filter(|r| r.outcome == outcome).count()
    }

    /// Operations by [`Record::label`] (`ok`, `fail:slot_taken`, `unknown`).
    pub fn tally(&self) -> BTreeMap<String, usize> {
        counts(self.records.iter().map(Record::label))
    }

    /// Every try, by [`Try::label`].
    pub fn try_labels(&self) -> BTreeMap<String, usize> {
        counts(self.tries().map(Try::label))
    }

    pub fn tries(&self) -> impl Iterator<Item = &Try> {
        self.records.iter().flat_map(|r| &r.tries)
    }

    /// Tries answered with `status`.
    pub fn tries_with_status(&self, status: u16) -> usize {
        self.tries().filter(|t| t.status == Some(status)).count()
    }

    /// Tries answered with a `5xx`, with their details (for messages).
    pub fn server_errors(&self) -> Vec<String> {
        let errors = self.tries().filter(|t| t.status >= Some(500));
        errors
            .map(|t| format!("{} on host {}: {:?}", t.label(), t.host, t.detail))
            .collect()
    }

    /// Share of operations that needed more than one try.
    pub fn retried_share(&self) -> f64 {
        if self.records.is_empty() {
            return 0.0;
        }
        self.records.iter().filter(|r| r.retried()).count() as f64 / self.records.len() as f64
    }

    /// The records of `executor`.
    pub fn of<'a>(&'a self, executor: &'a str) -> impl Iterator<Item = &'a Record> + 'a {
        self.records
            .iter()
            .filter(move |r| r.op.executor == executor)
    }
}

fn counts(labels: impl Iterator<Item = String>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for label in labels {
        *counts.entry(label).or_default() += 1;
    }
    counts
}

/// How hard a [`Client`] tries before it calls an operation unknown.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Bound on one try (sending, running, reading the answer).
    pub timeout: Duration,
    /// Most tries per operation.
    pub max_tries: u32,
    /// No new try starts this long after the operation's first.
    pub deadline: Duration,
    /// First pause after a failed try; doubles (with jitter) up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// `Retry-After` is honoured up to this long.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_tries: 20,
            deadline: Duration::from_secs(30),
            backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(1),
        }
    }
}

/// A tenant's client of a fleet: spreads operations over the hosts
/// (round-robin) and retries each with its own key. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    http: reqwest::Client,
    hosts: Vec<String>,
    key: String,
    next: AtomicUsize,
    policy: RetryPolicy,
}

impl Client {
    /// A client of `hosts` (base URLs, no trailing slash) with tenant `key`.
    pub fn new(hosts: Vec<String>, key: &str) -> Self {
        Self::with_policy(hosts, key, RetryPolicy::default())
    }

    pub fn with_policy(hosts: Vec<String>, key: &str, policy: RetryPolicy) -> Self {
        assert!(!hosts.is_empty(), "a client needs at least one host");
        Self {
            inner: Arc::new(ClientInner {
                // Keep-alive connections to a host that was killed fail on
                // their next use; that is a try like any other.
                http: reqwest::Client::builder()
                    .pool_idle_timeout(Duration::from_secs(5))
                    .build()
                    .expect("an HTTP client"),
                hosts,
                key: key.to_owned(),
                next: AtomicUsize::new(0),
                policy,
            }),
        }
    }

    /// Run `op` starting on the next host in turn.
    pub async fn invoke(&self, op: Operation) -> Record {
        let host = self.inner.next.fetch_add(1, Ordering::Relaxed) % self.inner.hosts.len();
        self.invoke_on(host, op).await
    }

    /// Run `op` starting on host `host`; a retry goes to the host after
    /// the one that failed it.
    pub async fn invoke_on(&self, host: usize, op: Operation) -> Record {
        let policy = &self.inner.policy;
        let hosts = self.inner.hosts.len();
        let started = Instant::now();
        let body = op.input.to_string();
        let mut tries = Vec::new();
        let mut host = host % hosts;
        loop {
            let (t, definite) = self.try_once(host, &op, &body, started).await;
            let pause = backoff(policy, tries.len() as u32 + 1, t.retry_after);
            tries.push(t);
            let out_of_tries = tries.len() as u32 >= policy.max_tries
                || started.elapsed() + pause >= policy.deadline;
            let (outcome, answer) = match definite {
                Some((200, v)) if v.get("result").is_some() => (Outcome::Ok, Some((200, v))),
                Some(answer) => (Outcome::Fail, Some(answer)),
                None if out_of_tries => (Outcome::Unknown, None),
                None => {
                    tokio::time::sleep(pause).await;
                    host = (host + 1) % hosts;
                    continue;
                }
            };
            let (status, body) = answer.unzip();
            let elapsed = started.elapsed();
            return Record {
                op,
                tries,
                outcome,
                status,
                body,
                started,
                elapsed,
            };
        }
    }

    /// One try; with the status and body when the answer is definite.
    async fn try_once(
        &self,
        host: usize,
        op: &Operation,
        body: &str,
        started: Instant,
    ) -> (Try, Option<(u16, Value)>) {
        let at = started.elapsed();
        let sent = Instant::now();
        let url = format!(
            "{}/v1/executors/{}/invoke",
            self.inner.hosts[host], op.executor
        );
        let request = self
            .inner
            .http
            .post(url)
            .timeout(self.inner.policy.timeout)
            .bearer_auth(&self.inner.key)
            .header("content-type", "application/json")
            .header("Idempotency-Key", &op.idempotency_key)
            .body(body.to_owned());
        let mut t = Try {
            host,
            at,
            ..Try::default()
        };
        // The body is part of the answer: a connection that breaks while
        // it comes is no answer at all.
        let answer = async {
            let response = request.send().await?;
            let (status, headers) = (response.status().as_u16(), response.headers().clone());
            Ok::<_, reqwest::Error>((status, headers, response.bytes().await?))
        };
        let answer = answer.await;
        t.elapsed = sent.elapsed();
        let (status, headers, bytes) = match answer {
            Ok(answer) => answer,
            Err(e) => {
                t.transport = Some(match () {
                    () if e.is_timeout() => Transport::Timeout,
                    () if e.is_connect() => Transport::Connect,
                    () => Transport::Broken,
                });
                t.detail = Some(format!("{e:#}"));
                return (t, None);
            }
        };
        t.status = Some(status);
        t.replayed = headers
            .get("idempotent-replayed")
            .is_some_and(|v| v.as_bytes() == b"true");
        t.retry_after = headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let value: Option<Value> = serde_json::from_slice(&bytes).ok();
        t.problem = value
            .as_ref()
            .and_then(|v| v["type"].as_str()?.strip_prefix("urn:bookhost:problem:"))
            .map(str::to_owned);
        if status >= 400 {
            t.detail = Some(
                value
                    .as_ref()
                    .and_then(|v| v["detail"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned()),
            );
        }
        let retryable = status >= 500
            || status == 429
            || (status == 409 && t.problem.as_deref() == Some("idempotency-key-in-progress"));
        match value {
            Some(value) if !retryable => (t, Some((status, value))),
            // A definite status with a body that is not JSON: something
            // between us and the host broke; ask again.
            _ => (t, None),
        }
    }

    /// Run every operation at once (one task each), each starting on the
    /// next host in turn; the records come back in the order of `ops`.
    pub async fn run(&self, ops: Vec<Operation>) -> History {
        let tasks: Vec<_> = ops
            .into_iter()
            .map(|op| {
                let client = self.clone();
                tokio::spawn(async move { client.invoke(op).await })
            })
            .collect();
        let mut records = Vec::with_capacity(tasks.len());
        for task in tasks {
            records.push(task.await.expect("a client task panicked"));
        }
        History { records }
    }

    /// Steady load: `clients` tasks, each running operations one after the
    /// other (`next(n)` makes the n-th of the whole run) until `duration`
    /// has passed; an operation started before then is finished. Faults
    /// are injected meanwhile by the caller.
    pub async fn run_load(
        &self,
        clients: usize,
        duration: Duration,
        next: impl Fn(u64) -> Operation + Send + Sync + 'static,
    ) -> History {
        let next = Arc::new(next);
        let counter = Arc::new(AtomicU64::new(0));
        let until = Instant::now() + duration;
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (client, next, counter) = (self.clone(), next.clone(), counter.clone());
                tokio::spawn(async move {
                    let mut records = Vec::new();
                    while Instant::now() < until {
                        let op = next(counter.fetch_add(1, Ordering::Relaxed));
                        records.push(client.invoke(op).await);
                    }
                    records
                })
            })
            .collect();
        let mut history = History::default();
        for task in tasks {
            history
                .records
                .extend(task.await.expect("a client task panicked"));
        }
        history
    }
}

/// The pause before try `attempt + 1`: exponential with jitter, or the
/// server's Retry-After (bounded) when it is longer.
fn backoff(policy: &RetryPolicy, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let exp = policy
        .backoff
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(policy.max_backoff);
    // Half to all of it, so retrying clients spread out.
    let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as u32;
    let pause = exp / 2 + exp / 2 * jitter / 1000;
    pause.max(retry_after.unwrap_or_default().min(policy.max_retry_after))
}

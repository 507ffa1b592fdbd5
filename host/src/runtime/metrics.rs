//! Prometheus metrics of the invocation path: the operators' conflict
//! insights (which executor or table retries, waits, is denied).

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

use crate::db::audit::AuditCall;

/// The host's metrics, in a registry of their own.
pub struct Metrics {
    registry: Registry,
    invocations: IntCounterVec,
    attempts: IntCounterVec,
    replays: IntCounterVec,
    capability_calls: IntCounterVec,
    commits_resolved: IntCounterVec,
    lock_wait: HistogramVec,
    instantiation: HistogramVec,
    execution: HistogramVec,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            HistogramVec::new(
                HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
                labels,
            )
            .expect("valid metric")
        };
        let metrics = Self {
            registry: Registry::new(),
            invocations: counter(
                "bookhost_invocations_total",
                "Invocations by executor and outcome.",
                &["executor", "outcome"],
            ),
            attempts: counter(
                "bookhost_attempts_total",
                "Attempts by executor and attempt outcome.",
                &["executor", "outcome"],
            ),
            replays: counter(
                "bookhost_replays_total",
                "Replayed attempts by executor and reason.",
                &["executor", "reason"],
            ),
            capability_calls: counter(
                "bookhost_capability_calls_total",
                "Capability calls by capability, table and outcome.",
                &["capability", "table", "outcome"],
            ),
            commits_resolved: counter(
                "bookhost_commits_resolved_total",
                "COMMITs whose answer was lost, by what the database said of them \
                 (committed, aborted, unknown).",
                &["truth"],
            ),
            lock_wait: histogram(
                "bookhost_lock_wait_seconds",
                "Time capability calls spent waiting for locks (calls that waited).",
                &["capability", "table"],
            ),
            instantiation: histogram(
                "bookhost_instantiation_seconds",
                "Instantiating an executor for an attempt.",
                &["executor"],
            ),
            execution: histogram(
                "bookhost_execution_seconds",
                "Running an attempt (instantiation to result).",
                &["executor"],
            ),
        };
        for collector in [
            &metrics.invocations,
            &metrics.attempts,
            &metrics.replays,
            &metrics.capability_calls,
            &metrics.commits_resolved,
        ] {
            metrics
                .registry
                .register(Box::new(collector.clone()))
                .expect("unique metric");
        }
        for collector in [
            &metrics.lock_wait,
            &metrics.instantiation,
            &metrics.execution,
        ] {
            metrics
                .registry
                .register(Box::new(collector.clone()))
                .expect("unique metric");
        }
        metrics
    }

    pub(crate) fn invocation(
        &self,
        executor: &str,
        outcome: &str,
        replays: &[crate::db::errors::RetryReason],
    ) {
        self.invocations
            .with_label_values(&[executor, outcome])
            .inc();
        for reason in replays {
            self.replays
                .with_label_values(&[executor, &reason.to_string()])
                .inc();
        }
    }

    pub(crate) fn attempt(
        &self,
        executor: &str,
        outcome: &str,
        calls: &[AuditCall],
        elapsed: Duration,
    ) {
        self.attempts.with_label_values(&[executor, outcome]).inc();
        self.execution
            .with_label_values(&[executor])
            .observe(elapsed.as_secs_f64());
        for call in calls {
            let table = call.table.as_deref().unwrap_or("");
            let outcome = call.outcome.as_str();
            self.capability_calls
                .with_label_values(&[call.capability, table, outcome])
                .inc();
            if call.lock_wait_us > 0 {
                self.lock_wait
                    .with_label_values(&[call.capability, table])
                    .observe(call.lock_wait_us as f64 / 1e6);
            }
        }
    }

    pub(crate) fn commit_resolved(&self, truth: &str) {
        self.commits_resolved.with_label_values(&[truth]).inc();
    }

    pub(crate) fn instantiated(&self, executor: &str, elapsed: Duration) {
        self.instantiation
            .with_label_values(&[executor])
            .observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

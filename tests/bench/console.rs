//! What an open console costs invocations: create-booking throughput with
//! no console, with consoles polling as the page does (the live list every
//! 2 s), and with consoles polling hard (the list every 250 ms and the
//! insights every 2 s), rounds interleaved; and how fast the pages answer
//! meanwhile.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bookhost::api::{app, AppState, ServiceConfig};
use bookhost::{Host, HostSettings};
use bookhost_tests::{executors, pool, tenant};

use super::{median_ratio, percentile, throughput, warmed_services, CLIENTS};

const ROUNDS: usize = 5;
/// Invocations per round: a few seconds, so that slow pages answer within it.
const ROUND: usize = 3000;
/// Consoles open at once.
const CONSOLES: usize = 4;

/// How a console polls: the live list every `rows`, the insights every
/// `insights` (if at all).
#[derive(Clone, Copy)]
struct Polling {
    rows: Duration,
    insights: Option<Duration>,
}

async fn sign_in(base: &str, key: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = client
        .post(format!("{base}/console/login"))
        .form(&[("key", key)])
        .send()
        .await
        .unwrap();
    let cookie = answer.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// `CONSOLES` consoles polling until stopped; the latency of each page
/// answer (ms) goes to `latencies` (rows, insights).
fn poll(
    base: &str,
    cookie: &str,
    polling: Polling,
    latencies: Arc<Mutex<(Vec<f64>, Vec<f64>)>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..CONSOLES)
        .map(|_| {
            let (base, cookie, latencies) = (base.to_owned(), cookie.to_owned(), latencies.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let get = |path: &str| {
                    client
                        .get(format!("{base}{path}"))
                        .header("cookie", &cookie)
                        .send()
                };
                // One page, read to the end: how long it took (ms).
                let timed = |path: &'static str| {
                    let answer = get(path);
                    async move {
                        let began = Instant::now();
                        let answer = answer.await.unwrap();
                        assert_eq!(answer.status(), 200);
                        answer.bytes().await.unwrap();
                        began.elapsed().as_secs_f64() * 1e3
                    }
                };
                let mut last_insights: Option<Instant> = None;
                loop {
                    let began = Instant::now();
                    let rows = timed("/console/invocations/rows").await;
                    latencies.lock().unwrap().0.push(rows);
                    if let Some(every) = polling.insights {
                        if last_insights.is_none_or(|at| at.elapsed() >= every) {
                            last_insights = Some(Instant::now());
                            let insights = timed("/console/insights?window=15m").await;
                            latencies.lock().unwrap().1.push(insights);
                        }
                    }
                    tokio::time::sleep(polling.rows.saturating_sub(began.elapsed())).await;
                }
            })
        })
        .collect()
}

pub async fn console_cost(report: &mut String) {
    use std::fmt::Write;
    let host = Host::new(pool(16).await, executors(), HostSettings::default());
    let operator_key = format!("operator-{}", uuid::Uuid::new_v4());
    let config = ServiceConfig {
        operator_key: Some(operator_key.clone()),
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = app(AppState::new(host.clone(), config));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let tenant = tenant(host.pool()).await;
    let (services, mut slot) = warmed_services(&host, tenant).await;
    let cookie = sign_in(&base, &operator_key).await;
    let gentle = Polling {
        rows: Duration::from_secs(2),
        insights: None,
    };
    let hard = Polling {
        rows: Duration::from_millis(250),
        insights: Some(Duration::from_secs(2)),
    };
    let latencies = Arc::new(Mutex::new((Vec::new(), Vec::new())));
    let (mut closed, mut open, mut hammering) = (Vec::new(), Vec::new(), Vec::new());
    // Each round runs the three series in another order, so that none of
    // them always follows another (the database's state after hammering,
    // the slots booked so far).
    for round in 0..ROUNDS {
        for series in 0..3 {
            let pollers = match (round + series) % 3 {
                0 => None,
                1 => Some(poll(&base, &cookie, gentle, latencies.clone())),
                _ => Some(poll(&base, &cookie, hard, latencies.clone())),
            };
            let rate = throughput(&host, tenant, &services, slot, ROUND, CLIENTS)
                .await
                .per_second;
            slot += ROUND;
            match (round + series) % 3 {
                0 => closed.push(rate),
                1 => open.push(rate),
                _ => hammering.push(rate),
            }
            for poller in pollers.into_iter().flatten() {
                poller.abort();
            }
        }
    }
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    writeln!(report, "### The console's cost to invocations\n").unwrap();
    writeln!(
        report,
        "create-booking on distinct slots (100 services), {CLIENTS} concurrent clients, {ROUNDS} rounds of \
         {ROUND} invocations per series, the series interleaved (in a rotating order), the console served by the same process \
         from the same pool. Open: {CONSOLES} consoles refreshing the live list every 2 s, as the page does. \
         Hammering: {CONSOLES} consoles refreshing it every 250 ms and the insights (15 min) every 2 s.\n"
    )
    .unwrap();
    writeln!(
        report,
        "| consoles | throughput per round (inv/s) | mean | median per-round ratio to none |"
    )
    .unwrap();
    writeln!(report, "|---|---|---|---|").unwrap();
    writeln!(
        report,
        "| none | {} | {:.0} | 1.000 |",
        fmt(&closed),
        mean(&closed)
    )
    .unwrap();
    for (label, series) in [("open, polling", &open), ("hammering", &hammering)] {
        writeln!(
            report,
            "| {label} | {} | {:.0} | {:.3} |",
            fmt(series),
            mean(series),
            median_ratio(series, &closed)
        )
        .unwrap();
    }
    let (mut rows, mut insights) = std::mem::take(&mut *latencies.lock().unwrap());
    rows.sort_by(f64::total_cmp);
    insights.sort_by(f64::total_cmp);
    let summary = |sorted: &[f64]| match sorted {
        [] => "none answered within a round".to_owned(),
        _ => format!(
            "p50 {:.1} ms, p99 {:.1} ms ({} answers)",
            percentile(sorted, 0.5),
            percentile(sorted, 0.99),
            sorted.len()
        ),
    };
    writeln!(
        report,
        "\nPages under that load: the live list {}; the insights {}.",
        summary(&rows),
        summary(&insights)
    )
    .unwrap();
    // The same pages with nothing else running: what an operator waits for.
    let client = reqwest::Client::new();
    let quiet = |path: &'static str| {
        let (client, base, cookie) = (client.clone(), base.clone(), cookie.clone());
        async move {
            let mut times = Vec::new();
            for _ in 0..20 {
                let began = Instant::now();
                let answer = client
                    .get(format!("{base}{path}"))
                    .header("cookie", &cookie)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answer.status(), 200);
                answer.bytes().await.unwrap();
                times.push(began.elapsed().as_secs_f64() * 1e3);
            }
            times.sort_by(f64::total_cmp);
            times
        }
    };
    let rows_quiet = quiet("/console/invocations").await;
    let insights_quiet = quiet("/console/insights?window=15m").await;
    writeln!(
        report,
        "With nothing else running (the audit holding the {} invocations above): the invocations page {}; \
         the insights (15 min, the newest 20 000 records) {}.",
        slot,
        summary(&rows_quiet),
        summary(&insights_quiet)
    )
    .unwrap();
}

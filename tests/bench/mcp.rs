//! MCP `tools/call` against the HTTP invoke path on the same executor, side
//! by side: create-booking on distinct slots through one running service,
//! interleaved rounds, throughput and latency of each.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use bookhost::api::ServiceConfig;
use bookhost::HostSettings;
use bookhost_tests::executors::*;
use bookhost_tests::http::{serve, Api, TestTenant};
use bookhost_tests::mcp::McpClient;
use bookhost_tests::{executors, pool};
use serde_json::json;

const SERVICES: usize = 100;
const ROUNDS: usize = 5;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    Http,
    Mcp,
}

/// What one round measured.
struct Round {
    per_second: f64,
    latencies: Vec<Duration>,
}

fn say(report: &mut String, line: impl AsRef<str>) {
    println!("{}", line.as_ref());
    let _ = writeln!(report, "{}", line.as_ref());
}

fn start_of(slot: usize) -> String {
    chrono::DateTime::from_timestamp(2_200_000_000 + (slot / SERVICES) as i64 * 3600, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `count` bookings, each on a slot of its own, by `clients` concurrent
/// clients, all one way.
async fn round(
    way: Way,
    api: &Api,
    tenant: &TestTenant,
    services: &[String],
    first_slot: usize,
    count: usize,
    clients: usize,
) -> Round {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mcp = McpClient::new(api.base(), Some(&tenant.key));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (api, mcp, next) = (api.with_new_client(), mcp.clone(), next.clone());
            let (key, services) = (tenant.key.clone(), services.to_vec());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= count {
                        return latencies;
                    }
                    let slot = first_slot + i;
                    let input = json!({"service_id": services[slot % SERVICES],
                                       "customer": "bench", "start": start_of(slot)});
                    let sent = Instant::now();
                    match way {
                        Way::Http => {
                            api.invoke(&key, CREATE_BOOKING, &input).await.expect(200);
                        }
                        Way::Mcp => {
                            let answer = mcp.call(CREATE_BOOKING, input, None).await;
                            assert_eq!(answer.result()["isError"], false);
                        }
                    }
                    latencies.push(sent.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(count);
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    Round {
        per_second: count as f64 / started.elapsed().as_secs_f64(),
        latencies,
    }
}

fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

pub async fn mcp_vs_http(report: &mut String) {
    say(report, "## 8. MCP tools/call vs the HTTP invoke path\n");
    let host = bookhost::Host::new(pool(40).await, executors(), HostSettings::default());
    let server = serve(host, ServiceConfig::default()).await;
    let tenant = server.tenant_with(&[CREATE_SERVICE, CREATE_BOOKING]).await;
    let mut services = Vec::new();
    for i in 0..SERVICES {
        let answer = server
            .invoke(
                &tenant.key,
                CREATE_SERVICE,
                &json!({"name": format!("s-{i}"), "duration_minutes": 60}),
            )
            .await
            .expect(200);
        services.push(
            answer["result"]["service"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let api: Api = (*server).clone();
    let mut slot = 0;
    // Warm both paths (pools, instance slots, the key lookups).
    for way in [Way::Http, Way::Mcp] {
        round(way, &api, &tenant, &services, slot, 200, 8).await;
        slot += 200;
    }
    say(
        report,
        "create-booking on distinct slots of one tenant's 100 services, through one running \
         service on a free local port (audited, RLS on): over HTTP (`POST \
         /v1/executors/create-booking/invoke`) and over MCP (`POST /mcp`, a stateless \
         `tools/call` of the 2025-06-18 revision with a JSON answer, as an agent sends it). \
         Clients in this process. Per client count, 5 rounds of each way, alternating; \
         throughput the mean of the rounds, the ratio the median of the rounds' ratios.\n",
    );
    say(
        report,
        "| clients | way | inv/s | p50 ms | p99 ms | MCP / HTTP |",
    );
    say(report, "|---|---|---|---|---|---|");
    for clients in [1usize, 8, 32] {
        let count = if clients == 1 { 150 } else { 500 };
        let mut rates = [Vec::new(), Vec::new()];
        let mut latencies = [Vec::new(), Vec::new()];
        for _ in 0..ROUNDS {
            for (i, way) in [Way::Http, Way::Mcp].into_iter().enumerate() {
                let run = round(way, &api, &tenant, &services, slot, count, clients).await;
                slot += count;
                rates[i].push(run.per_second);
                latencies[i].extend(run.latencies);
            }
        }
        let mut ratios: Vec<f64> = rates[1].iter().zip(&rates[0]).map(|(m, h)| m / h).collect();
        ratios.sort_by(f64::total_cmp);
        let ratio = ratios[ratios.len() / 2];
        for (i, label) in ["HTTP invoke", "MCP tools/call"].into_iter().enumerate() {
            latencies[i].sort();
            let mean = rates[i].iter().sum::<f64>() / rates[i].len() as f64;
            let column = if i == 1 {
                format!("**{ratio:.3}**")
            } else {
                String::new()
            };
            say(
                report,
                format!(
                    "| {clients} | {label} | {mean:.0} | {:.2} | {:.2} | {column} |",
                    percentile_ms(&latencies[i], 0.5),
                    percentile_ms(&latencies[i], 0.99),
                ),
            );
        }
    }
    say(report, "");
}

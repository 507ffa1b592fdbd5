//! The demo business `bookhost dev` sets up once, through the example executors themselves: a salon in Paris with hours, two stylists, a yoga class of 8 seats in a studio, and a massage that needs confirmation.

use anyhow::Context as _;
use jiff::civil::Weekday;
use serde_json::{json, Value};

use crate::{Host, InvocationOutcome, TenantId};

/// The business's time zone.
pub const TIME_ZONE: &str = "Europe/Paris";

/// The demo's services, and two bookable starts for the printed commands.
pub struct DemoBusiness {
    pub haircut: String,
    pub yoga: String,
    pub massage: String,
    /// A haircut start within the hours (the next weekday, 10:00 Paris).
    pub start: String,
    /// Another one, an hour later, to reschedule to.
    pub later: String,
    /// The Tuesday or Thursday class start (18:00 Paris) after `start`.
    pub class_start: String,
}

async fn run(host: &Host, tenant: TenantId, executor: &str, input: Value) -> anyhow::Result<Value> {
    let report = host
        .invoke(tenant, executor, &input.to_string())
        .await
        .with_context(|| format!("running {executor} for the demo business"))?;
    match report.outcome {
        InvocationOutcome::Ok { output } => Ok(output),
        other => anyhow::bail!("{executor} failed setting up the demo business: {other:?}"),
    }
}

/// The demo business's service ids by name, if it was set up before.
async fn existing(host: &Host, tenant: TenantId) -> anyhow::Result<Option<[String; 3]>> {
    let mut tx = crate::db::begin_as_tenant(host.pool(), tenant).await?;
    let rows: Vec<(String, uuid::Uuid)> = sqlx::query_as(
        "SELECT name, id FROM services WHERE tenant_id = $1 AND name IN ('Haircut', 'Yoga class', 'Massage')",
    )
    .bind(tenant.0)
    .fetch_all(&mut *tx)
    .await?;
    let id = |name: &str| {
        rows.iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| id.to_string())
    };
    Ok(match (id("Haircut"), id("Yoga class"), id("Massage")) {
        (Some(h), Some(y), Some(m)) => Some([h, y, m]),
        _ => None,
    })
}

/// Set the demo business up (once) and say where to book.
pub async fn demo_business(host: &Host, tenant: TenantId) -> anyhow::Result<DemoBusiness> {
    let [haircut, yoga, massage] = match existing(host, tenant).await? {
        Some(ids) => ids,
        None => create(host, tenant).await?,
    };
    let zone = crate::schedule::time_zone(TIME_ZONE)?;
    let today = jiff::Timestamp::now().to_zoned(zone.clone()).date();
    let mut day = today.tomorrow()?;
    while matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday) {
        day = day.tomorrow()?;
    }
    let mut class_day = day;
    while !matches!(class_day.weekday(), Weekday::Tuesday | Weekday::Thursday) {
        class_day = class_day.tomorrow()?;
    }
    let at = |date: jiff::civil::Date, hour: i8| -> anyhow::Result<String> {
        let instant = date.at(hour, 0, 0, 0).to_zoned(zone.clone())?.timestamp();
        Ok(instant.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
    };
    Ok(DemoBusiness {
        haircut,
        yoga,
        massage,
        start: at(day, 10)?,
        later: at(day, 11)?,
        class_start: at(class_day, 18)?,
    })
}

async fn create(host: &Host, tenant: TenantId) -> anyhow::Result<[String; 3]> {
    crate::db::set_tenant_time_zone(host.pool(), tenant, TIME_ZONE).await?;
    let service = |input: Value| async move {
        let output = run(host, tenant, "create-service", input).await?;
        output["service"]["id"]
            .as_str()
            .map(str::to_owned)
            .context("create-service answered without an id")
    };
    let haircut = service(json!({"name": "Haircut", "duration_minutes": 30,
        "buffer_after_minutes": 10, "slot_increment_minutes": 15,
        "min_notice_minutes": 60, "booking_window_days": 60}))
    .await?;
    let yoga =
        service(json!({"name": "Yoga class", "duration_minutes": 60, "capacity": 8})).await?;
    let massage = service(json!({"name": "Massage", "duration_minutes": 60,
        "buffer_after_minutes": 15, "requires_confirmation": true}))
    .await?;
    for (name, kind, services) in [
        ("Ana", "staff", vec![&haircut, &massage]),
        ("Ben", "staff", vec![&haircut, &massage]),
        ("Studio", "room", vec![&yoga]),
    ] {
        run(
            host,
            tenant,
            "create-resource",
            json!({"name": name, "kind": kind, "service_ids": services}),
        )
        .await?;
    }
    let mut weekly: Vec<Value> = (1..=5)
        .map(|day| json!({"weekday": day, "opens": "09:00", "closes": "18:00"}))
        .collect();
    weekly.push(json!({"weekday": 6, "opens": "10:00", "closes": "14:00"}));
    let year = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .year();
    let exceptions: Vec<Value> = [year, year + 1]
        .iter()
        .map(|y| json!({"day": format!("{y}-12-25"), "closed": true}))
        .collect();
    run(
        host,
        tenant,
        "set-opening-hours",
        json!({"weekly": weekly, "exceptions": exceptions}),
    )
    .await?;
    run(
        host,
        tenant,
        "set-opening-hours",
        json!({"service_id": yoga, "weekly": [
            {"weekday": 2, "opens": "18:00", "closes": "20:00"},
            {"weekday": 4, "opens": "18:00", "closes": "20:00"}]}),
    )
    .await?;
    Ok([haircut, yoga, massage])
}

//! The booking action behind create-booking and create-booking-locked, which differ only in taking a lock before checking.
//!
//! Written naively on purpose (check for an overlap, then insert): the host's
//! serializable transactions and the `bookings_no_overlap` constraint keep it
//! correct under concurrency, and the tests prove it.

use bookhost_sdk::serde_json::{json, Value as Json};
use bookhost_sdk::time::{self, MICROS_PER_DAY, MICROS_PER_MINUTE};
use bookhost_sdk::{
    asc, eq, error, error_with, field, gt, is_in, log, lt, manifest, run, text, timestamp,
    transaction, uuid, Input, LogLevel, Manifest, RowExt, Value,
};

/// Statuses whose bookings hold their slot (the exclusion constraint's `WHERE`).
const ACTIVE_STATUSES: [&str; 2] = ["pending", "confirmed"];
const NO_OVERLAP_CONSTRAINT: &str = "bookings_no_overlap";
const SUGGESTION_WINDOW: i64 = 7 * MICROS_PER_DAY;
const MAX_SUGGESTIONS: usize = 3;
const BOOKING_COLUMNS: [&str; 6] = [
    "id",
    "service_id",
    "customer",
    "starts_at",
    "ends_at",
    "status",
];

/// The manifest of the executor named `name`.
pub fn describe(name: &str, use_lock: bool) -> Manifest {
    let mut description = String::from(
        "Book a time slot on a service for a customer. Give the service's id (from create-service), \
         the customer's name and the start time as an RFC 3339 timestamp in UTC \
         (e.g. \"2026-12-01T10:00:00Z\"); the booking lasts the service's duration and is \
         confirmed immediately. On success the answer is {\"booking\": {\"id\", \"service_id\", \
         \"customer\", \"starts_at\", \"ends_at\", \"status\"}}. If the slot overlaps another \
         pending or confirmed booking of the service, the answer is the error \"slot_taken\" \
         with \"suggested_starts\": up to 3 free start times within the following 7 days \
         (none in the past) to offer the customer; book one of them with another call. \
         Other errors: \"service_not_found\", \"invalid_input\".",
    );
    if use_lock {
        description.push_str(
            " This variant takes a lock on the service and day before checking, so concurrent \
             requests for the same day wait for each other instead of being retried.",
        );
    }
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": format!("{name} input"),
        "type": "object",
        "properties": {
            "service_id": {
                "type": "string",
                "format": "uuid",
                "description": "Id of the service to book."
            },
            "customer": {
                "type": "string",
                "minLength": 1,
                "maxLength": 200,
                "description": "Name of the customer the booking is for."
            },
            "start": {
                "type": "string",
                "format": "date-time",
                "description": "Start of the booking, RFC 3339 in UTC, e.g. 2026-12-01T10:00:00Z."
            }
        },
        "required": ["service_id", "customer", "start"],
        "additionalProperties": false
    });
    let capabilities: &[&str] = if use_lock {
        &[
            "lock",
            "query:services",
            "query:bookings",
            "insert:bookings",
        ]
    } else {
        &["query:services", "query:bookings", "insert:bookings"]
    };
    manifest(name, &description, schema, capabilities)
}

/// The `execute` export of both booking executors.
pub fn execute(input: &str, use_lock: bool) -> Result<String, String> {
    run(input, |json| create_booking(json, use_lock))
}

fn create_booking(json: Json, use_lock: bool) -> Result<Json, Json> {
    let input = Input::new(json, &["service_id", "customer", "start"])?;
    let service_id = input.uuid("service_id")?;
    let customer = input.str("customer", 1..=200)?;
    let start = input.time("start")?;

    if use_lock {
        // Per service and day: bookings on other days or services never wait.
        transaction::lock(&format!("booking:{service_id}:{}", time::utc_date(start)))?;
    }

    let services = transaction::query("services", &[eq("id", uuid(&service_id))], &[], Some(1))?;
    let Some(service) = services.first() else {
        return Err(error(
            "service_not_found",
            format!("no service with id {service_id}"),
        ));
    };
    let duration = service.int("duration_minutes")? * MICROS_PER_MINUTE;
    let end = start + duration;

    let overlapping = transaction::query(
        "bookings",
        &[
            eq("service_id", uuid(&service_id)),
            is_in("status", active_statuses()),
            lt("starts_at", timestamp(end)),
            gt("ends_at", timestamp(start)),
        ],
        &[],
        Some(1),
    )?;
    if !overlapping.is_empty() {
        return Err(slot_taken(&service_id, start, duration));
    }

    let inserted = transaction::insert(
        "bookings",
        &[
            field("service_id", uuid(&service_id)),
            field("customer", text(customer)),
            field("starts_at", timestamp(start)),
            field("ends_at", timestamp(end)),
            field("status", text("confirmed")),
        ],
    );
    match inserted {
        Ok(row) => Ok(json!({ "booking": row.pick(&BOOKING_COLUMNS)? })),
        // Another invocation took the slot between the check and the insert;
        // the failed insert left the transaction usable, so suggest instead.
        Err(e) if e.is_conflict_on(NO_OVERLAP_CONSTRAINT) => {
            Err(slot_taken(&service_id, start, duration))
        }
        Err(e) => Err(e.into()),
    }
}

fn active_statuses() -> impl Iterator<Item = Value> {
    ACTIVE_STATUSES.into_iter().map(text)
}

fn slot_taken(service_id: &str, start: i64, duration: i64) -> Json {
    let suggested = match suggest(service_id, start, duration) {
        Ok(starts) => starts,
        Err(e) => {
            // The answer is still "slot taken"; suggestions are a courtesy.
            log(
                LogLevel::Warn,
                &format!("could not compute suggested starts: {e}"),
            );
            Vec::new()
        }
    };
    error_with(
        "slot_taken",
        format!(
            "the slot starting {} overlaps another booking of this service",
            time::format_rfc3339(start)
        ),
        json!({
            "suggested_starts": suggested.into_iter().map(time::format_rfc3339).collect::<Vec<_>>()
        }),
    )
}

/// Free starts after `start`, found with one query of the active bookings
/// in the window and computed here rather than by probing slot by slot.
fn suggest(service_id: &str, start: i64, duration: i64) -> Result<Vec<i64>, String> {
    let window_end = start + SUGGESTION_WINDOW;
    let rows = transaction::query(
        "bookings",
        &[
            eq("service_id", uuid(service_id)),
            is_in("status", active_statuses()),
            lt("starts_at", timestamp(window_end + duration)),
            gt("ends_at", timestamp(start)),
        ],
        &[asc("starts_at")],
        None,
    )
    .map_err(|e| format!("{}: {}", e.kind(), e.detail()))?;
    let mut busy = rows
        .iter()
        .map(|r| Ok((r.timestamp("starts_at")?, r.timestamp("ends_at")?)))
        .collect::<Result<Vec<_>, Json>>()
        .map_err(|e| e.to_string())?;
    // The host orders them already; sorting again costs nothing and keeps
    // the sweep below correct whatever order arrives.
    busy.sort_unstable();
    Ok(free_starts(
        start,
        duration,
        window_end,
        time::now(),
        &busy,
        MAX_SUGGESTIONS,
    ))
}

/// Up to `max` starts `start + k*duration` (k >= 1) that are before
/// `window_end`, not before `now`, and whose slot overlaps no interval of
/// `busy` (sorted by start, half-open `[start, end)`).
pub fn free_starts(
    start: i64,
    duration: i64,
    window_end: i64,
    now: i64,
    busy: &[(i64, i64)],
    max: usize,
) -> Vec<i64> {
    let mut found = Vec::new();
    if duration <= 0 {
        return found;
    }
    // Jump straight to the first candidate that is not in the past.
    let mut k = 1.max((now - start + duration - 1).div_euclid(duration));
    // Busy intervals ending before a candidate cannot touch any later one.
    let mut first_relevant = 0;
    while found.len() < max {
        let candidate = start + k * duration;
        if candidate >= window_end {
            break;
        }
        let candidate_end = candidate + duration;
        while first_relevant < busy.len() && busy[first_relevant].1 <= candidate {
            first_relevant += 1;
        }
        let taken = busy[first_relevant..]
            .iter()
            .take_while(|(s, _)| *s < candidate_end)
            .any(|(_, e)| *e > candidate);
        if !taken {
            found.push(candidate);
        }
        k += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = MICROS_PER_MINUTE;

    #[test]
    fn skips_busy_and_past_slots() {
        // 60-minute slots from t=0; busy 60..120 and 150..200 (minutes).
        let busy = [(60 * M, 120 * M), (150 * M, 200 * M)];
        let got = free_starts(0, 60 * M, 7 * MICROS_PER_DAY, 0, &busy, 3);
        assert_eq!(got, vec![240 * M, 300 * M, 360 * M]);
        // Nothing before "now" = 301 minutes.
        let got = free_starts(0, 60 * M, 7 * MICROS_PER_DAY, 301 * M, &busy, 2);
        assert_eq!(got, vec![360 * M, 420 * M]);
    }

    #[test]
    fn respects_window_and_long_busy_intervals() {
        let busy = [(0, 1000 * M), (100 * M, 110 * M)];
        assert_eq!(
            free_starts(0, 60 * M, 1000 * M, 0, &busy, 3),
            Vec::<i64>::new()
        );
        let got = free_starts(0, 60 * M, 1200 * M, 0, &busy, 3);
        assert_eq!(got, vec![1020 * M, 1080 * M, 1140 * M]);
    }
}

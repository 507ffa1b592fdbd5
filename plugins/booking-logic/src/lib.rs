//! The booking action behind create-booking and create-booking-locked, which differ only in taking a lock before checking.
//!
//! Written naively on purpose: ask the host whether the slot is bookable
//! (hours, buffers, notice, window, seats, resources, holds), then insert.
//! The host's serializable transactions keep the check and the insert one
//! decision under concurrency (a class's seat count is a count no
//! constraint can express), the exclusion constraints are the last wall,
//! and the tests prove both.

use bookhost_sdk::serde_json::{json, Value as Json};
use bookhost_sdk::slots::{self, Ask};
use bookhost_sdk::time::{self, MICROS_PER_DAY, MICROS_PER_MINUTE};
use bookhost_sdk::{
    availability::{Refusal, RefusalKind},
    eq, error_with, field, log, manifest, run, text, timestamp, transaction, uuid, Input, LogLevel,
    Manifest, RowExt,
};

/// The constraints a booking can hit when another invocation took its slot.
pub const SLOT_CONSTRAINTS: [&str; 4] = [
    "bookings_no_overlap",
    "bookings_one_session_at_a_time",
    "bookings_resource_no_overlap",
    "bookings_one_per_hold",
];
const SUGGESTION_WINDOW: i64 = 7 * MICROS_PER_DAY;
const MAX_SUGGESTIONS: usize = 3;
pub const BOOKING_COLUMNS: [&str; 7] = [
    "id",
    "service_id",
    "customer",
    "starts_at",
    "ends_at",
    "status",
    "resource_id",
];

/// The manifest of the executor named `name`.
pub fn describe(name: &str, use_lock: bool) -> Manifest {
    let mut description = String::from(
        "Book a time slot on a service for a customer. Give the service's id (from create-service), \
         the customer's name and the start time as an RFC 3339 timestamp in UTC \
         (e.g. \"2026-12-01T10:00:00Z\"); the booking lasts the service's duration. It is \
         confirmed at once, or \"pending\" when the service requires confirmation \
         (confirm-booking). Optional: \"resource_id\" (a staff member or room that serves the \
         service; by default the host picks a free one) and \"hold_id\" (a hold from hold-slot \
         for this slot, which the booking takes up). On success the answer is {\"booking\": \
         {\"id\", \"service_id\", \"customer\", \"starts_at\", \"ends_at\", \"status\", \
         \"resource_id\"}}. If the slot is taken (another booking, or every seat of a class), \
         the answer is the error \"slot_taken\" with \"suggested_starts\": up to 3 bookable \
         start times within the following 7 days; \"slot_held\" if the seats left are held for \
         others. Other errors, each with a message naming what is in the way: \
         \"outside_hours\", \"off_grid\", \"too_soon\", \"beyond_window\", \"in_buffer\", \
         \"no_resource\", \"resource_not_allowed\", \"hold_not_valid\", \"service_not_found\", \
         \"invalid_input\".",
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
            },
            "resource_id": {
                "type": "string",
                "format": "uuid",
                "description": "A resource (staff, room) that serves the service; default: any free one."
            },
            "hold_id": {
                "type": "string",
                "format": "uuid",
                "description": "A live hold of this slot (from hold-slot) that the booking takes up."
            }
        },
        "required": ["service_id", "customer", "start"],
        "additionalProperties": false
    });
    let capabilities: &[&str] = if use_lock {
        &["lock", "availability", "query:services", "insert:bookings"]
    } else {
        &["availability", "query:services", "insert:bookings"]
    };
    manifest(name, &description, schema, capabilities)
}

/// The `execute` export of both booking executors.
pub fn execute(input: &str, use_lock: bool) -> Result<String, String> {
    run(input, |json| create_booking(json, use_lock))
}

fn create_booking(json: Json, use_lock: bool) -> Result<Json, Json> {
    let input = Input::new(
        json,
        &["service_id", "customer", "start", "resource_id", "hold_id"],
    )?;
    let service_id = input.uuid("service_id")?;
    let customer = input.str("customer", 1..=200)?;
    let start = input.time("start")?;
    let ask = Ask {
        resource_id: input.opt_uuid("resource_id")?,
        hold_id: input.opt_uuid("hold_id")?,
        moving_booking_id: None,
    };

    if use_lock {
        // Per service and day: bookings on other days or services never wait.
        transaction::lock(&format!("booking:{service_id}:{}", time::utc_date(start)))?;
    }

    let services = transaction::query("services", &[eq("id", uuid(&service_id))], &[], Some(1))?;
    let Some(service) = services.first() else {
        return Err(bookhost_sdk::error(
            "service_not_found",
            format!("no service with id {service_id}"),
        ));
    };
    let duration = service.int("duration_minutes")? * MICROS_PER_MINUTE;
    let end = start + duration;
    let hold_id = ask.hold_id.clone();
    let slot = match slots::check(&service_id, start, ask)? {
        Ok(slot) => slot,
        Err(refusal) => return Err(refused(&service_id, start, &refusal)),
    };
    let status = if service.boolean("requires_confirmation")? {
        "pending"
    } else {
        "confirmed"
    };
    let mut values = vec![
        field("service_id", uuid(&service_id)),
        field("customer", text(customer)),
        field("starts_at", timestamp(start)),
        field("ends_at", timestamp(end)),
        field("status", text(status)),
    ];
    if let Some(resource) = slot.resources.first() {
        values.push(field("resource_id", uuid(resource)));
    }
    // The hold is taken up, not deleted: from now on it blocks nothing more
    // than this booking, and it books once (`bookings_one_per_hold`).
    if let Some(hold) = &hold_id {
        values.push(field("hold_id", uuid(hold)));
    }
    let row = match transaction::insert("bookings", &values) {
        Ok(row) => row,
        // Another invocation took the slot between the check and the insert
        // (only without the host's discipline: with it, one of them is
        // replayed and sees the other); the constraint is the last wall.
        Err(e) if SLOT_CONSTRAINTS.iter().any(|c| e.is_conflict_on(c)) => {
            return Err(slot_taken(&service_id, start, e.detail()));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(json!({ "booking": row.pick(&BOOKING_COLUMNS)? }))
}

/// A refusal as the caller's error: a taken slot with suggestions, a held
/// one, or the refusal's own code and message.
pub fn refused(service_id: &str, start: i64, refusal: &Refusal) -> Json {
    match refusal.kind {
        RefusalKind::Overlaps | RefusalKind::Full => {
            slot_taken(service_id, start, &refusal.message)
        }
        RefusalKind::Held => error_with("slot_held", refusal.message.clone(), json!({})),
        _ => slots::refusal_error(refusal),
    }
}

fn slot_taken(service_id: &str, start: i64, why: &str) -> Json {
    let suggested = match slots::free_slots(service_id, start + 1, start + SUGGESTION_WINDOW) {
        Ok(free) => free
            .iter()
            .map(|s| s.starts_at)
            .filter(|s| *s > start)
            .take(MAX_SUGGESTIONS)
            .collect(),
        Err(e) => {
            // The answer is still "slot taken"; suggestions are a courtesy.
            log(
                LogLevel::Warn,
                &format!("could not compute suggested starts: {}", e.detail()),
            );
            Vec::new()
        }
    };
    error_with(
        "slot_taken",
        format!(
            "the slot starting {} is taken: {why}",
            time::format_rfc3339(start)
        ),
        json!({
            "suggested_starts": suggested.into_iter().map(time::format_rfc3339).collect::<Vec<_>>()
        }),
    )
}

/// The active statuses: bookings in them hold their slot.
pub const ACTIVE: [&str; 2] = ["pending", "confirmed"];

/// One booking of the tenant by id, or `booking_not_found`.
pub fn booking(id: &str) -> Result<bookhost_sdk::Row, Json> {
    let rows = transaction::query("bookings", &[eq("id", uuid(id))], &[], Some(1))?;
    rows.into_iter()
        .next()
        .ok_or_else(|| bookhost_sdk::error("booking_not_found", format!("no booking with id {id}")))
}

/// The rule fields of a service an input sets (create-service,
/// update-service): each optional, checked against the same bounds as the
/// database's constraints so a bad one is named before any write.
pub fn service_rule_fields(input: &Input) -> Result<Vec<bookhost_sdk::Field>, Json> {
    use bookhost_sdk::{boolean, integer, null};
    let mut fields = Vec::new();
    for (key, range) in [
        ("buffer_before_minutes", 0..=1440),
        ("buffer_after_minutes", 0..=1440),
        ("capacity", 1..=1000),
        ("min_notice_minutes", 0..=525_600),
    ] {
        if let Some(n) = input.opt_int(key, range)? {
            fields.push(field(key, integer(n)));
        }
    }
    // These two may be set back to "none" with an explicit null.
    for (key, range) in [
        ("booking_window_days", 1..=3650),
        ("slot_increment_minutes", 1..=1440),
    ] {
        match input.get(key) {
            None => {}
            Some(Json::Null) => fields.push(field(key, null())),
            Some(_) => fields.push(field(key, integer(input.int(key, range)?))),
        }
    }
    if let Some(b) = input.opt_bool("requires_confirmation")? {
        fields.push(field("requires_confirmation", boolean(b)));
    }
    Ok(fields)
}

/// The rule keys [`service_rule_fields`] reads, for `Input::new`.
pub const SERVICE_RULE_KEYS: [&str; 7] = [
    "buffer_before_minutes",
    "buffer_after_minutes",
    "capacity",
    "min_notice_minutes",
    "booking_window_days",
    "slot_increment_minutes",
    "requires_confirmation",
];

/// The JSON Schema properties of the rule keys.
pub fn service_rule_schema() -> Json {
    json!({
        "buffer_before_minutes": {"type": "integer", "minimum": 0, "maximum": 1440,
            "description": "Minutes kept free before each booking (default 0)."},
        "buffer_after_minutes": {"type": "integer", "minimum": 0, "maximum": 1440,
            "description": "Minutes kept free after each booking (default 0)."},
        "capacity": {"type": "integer", "minimum": 1, "maximum": 1000,
            "description": "Seats per session: 1 for appointments, N for a class (default 1). Never below the seats an upcoming session already fills."},
        "min_notice_minutes": {"type": "integer", "minimum": 0, "maximum": 525600,
            "description": "How long before its start a slot can still be booked (default 0)."},
        "booking_window_days": {"type": ["integer", "null"], "minimum": 1, "maximum": 3650,
            "description": "How many days ahead one can book (default: no limit)."},
        "slot_increment_minutes": {"type": ["integer", "null"], "minimum": 1, "maximum": 1440,
            "description": "Slots start every this many minutes from the opening (default: the duration)."},
        "requires_confirmation": {"type": "boolean",
            "description": "Bookings start pending until confirm-booking (default false)."}
    })
}

/// `HH:MM` (00:00 to 24:00) as minutes after midnight.
pub fn minutes_of(key: &str, text: &str) -> Result<i64, Json> {
    let parsed = text.split_once(':').and_then(|(h, m)| {
        let (h, m) = (h.parse::<i64>().ok()?, m.parse::<i64>().ok()?);
        (text.len() == 5 && (0..=24).contains(&h) && (0..60).contains(&m) && h * 60 + m <= 1440)
            .then_some(h * 60 + m)
    });
    parsed.ok_or_else(|| {
        bookhost_sdk::invalid_input(format!(
            "{key:?} must be a wall-clock time HH:MM from 00:00 to 24:00, got {text:?}"
        ))
    })
}

/// Minutes after midnight as `HH:MM`.
pub fn hhmm(minutes: i64) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

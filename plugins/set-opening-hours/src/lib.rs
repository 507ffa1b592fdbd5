//! set-opening-hours: replaces the weekly opening hours of the business, a service or a resource, and sets dated exceptions; the database's constraints name hours that end before they start or overlap.

use bookhost_sdk::serde_json::{json, Value as Json};
use bookhost_sdk::{
    eq, error, field, integer, invalid_input, is_null, manifest, run, text, transaction, uuid,
    Condition, DbError, Field, Guest, Input, Manifest,
};
use booking_logic::{hhmm, minutes_of};

struct SetOpeningHours;

impl Guest for SetOpeningHours {
    fn describe() -> Manifest {
        manifest(
            env!("CARGO_PKG_NAME"),
            "Set opening hours, as local wall-clock times in the business's time zone (or the \
             resource's). Scope: \"service_id\" or \"resource_id\", or neither for the whole \
             business (a service without hours of its own follows the business's; with none at \
             all it is always open). \"weekly\": [{\"weekday\": 1-7 (1 = Monday), \"opens\": \
             \"09:00\", \"closes\": \"17:00\"}, ...] replaces the scope's weekly hours (several \
             intervals a day are fine; they may not overlap). \"exceptions\": [{\"day\": \
             \"2026-12-24\", \"opens\": \"09:00\", \"closes\": \"12:00\"} or {\"day\": ..., \
             \"closed\": true}] replaces those days' hours. On success: {\"weekly\": n, \
             \"exceptions\": m}. Errors: \"invalid_hours\" (closes before it opens), \
             \"overlapping_hours\", \"invalid_day\", \"not_found\" (service or resource), \
             \"invalid_input\".",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": "set-opening-hours input",
                "type": "object",
                "properties": {
                    "service_id": {"type": "string", "format": "uuid"},
                    "resource_id": {"type": "string", "format": "uuid"},
                    "weekly": {"type": "array", "maxItems": 70, "items": {
                        "type": "object",
                        "properties": {
                            "weekday": {"type": "integer", "minimum": 1, "maximum": 7},
                            "opens": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
                            "closes": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"}
                        },
                        "required": ["weekday", "opens", "closes"],
                        "additionalProperties": false
                    }},
                    "exceptions": {"type": "array", "maxItems": 366, "items": {
                        "type": "object",
                        "properties": {
                            "day": {"type": "string", "format": "date"},
                            "opens": {"type": "string"},
                            "closes": {"type": "string"},
                            "closed": {"type": "boolean"}
                        },
                        "required": ["day"],
                        "additionalProperties": false
                    }}
                },
                "additionalProperties": false
            }),
            &[
                "delete:opening_hours",
                "insert:opening_hours",
                "delete:hours_exceptions",
                "insert:hours_exceptions",
            ],
        )
    }

    fn execute(input: String) -> Result<String, String> {
        run(&input, set_opening_hours)
    }
}

fn set_opening_hours(json: Json) -> Result<Json, Json> {
    let input = Input::new(json, &["service_id", "resource_id", "weekly", "exceptions"])?;
    let service = input.opt_uuid("service_id")?;
    let resource = input.opt_uuid("resource_id")?;
    let (scope, scope_fields): (Vec<Condition>, Vec<Field>) = match (&service, &resource) {
        (Some(_), Some(_)) => {
            return Err(invalid_input(
                "give service_id or resource_id, not both (hours belong to one of them)",
            ))
        }
        (Some(s), None) => (
            vec![eq("service_id", uuid(s))],
            vec![field("service_id", uuid(s))],
        ),
        (None, Some(r)) => (
            vec![eq("resource_id", uuid(r))],
            vec![field("resource_id", uuid(r))],
        ),
        (None, None) => (
            vec![is_null("service_id"), is_null("resource_id")],
            Vec::new(),
        ),
    };
    let mut weekly = 0;
    if let Some(rows) = input.get("weekly") {
        let rows = rows
            .as_array()
            .ok_or_else(|| invalid_input("\"weekly\" must be an array"))?;
        transaction::delete("opening_hours", &scope)?;
        for (i, row) in rows.iter().enumerate() {
            let row = Input::new(row.clone(), &["weekday", "opens", "closes"])
                .map_err(|e| prefixed(e, &format!("weekly[{i}]")))?;
            let weekday = row.int("weekday", 1..=7)?;
            let opens = minutes_of("opens", row.str("opens", 5..=5)?)?;
            let closes = minutes_of("closes", row.str("closes", 5..=5)?)?;
            let mut values = scope_fields.clone();
            values.extend([
                field("weekday", integer(weekday)),
                field("opens_minute", integer(opens)),
                field("closes_minute", integer(closes)),
            ]);
            transaction::insert("opening_hours", &values)
                .map_err(|e| refused(e, &format!("weekday {weekday}"), opens, closes))?;
            weekly += 1;
        }
    }
    let mut exceptions = 0;
    if let Some(rows) = input.get("exceptions") {
        let rows = rows
            .as_array()
            .ok_or_else(|| invalid_input("\"exceptions\" must be an array"))?;
        let mut cleared = std::collections::BTreeSet::new();
        for (i, row) in rows.iter().enumerate() {
            let row = Input::new(row.clone(), &["day", "opens", "closes", "closed"])
                .map_err(|e| prefixed(e, &format!("exceptions[{i}]")))?;
            let day = row.str("day", 10..=10).map_err(|_| {
                error(
                    "invalid_day",
                    format!("exceptions[{i}].day must be a date YYYY-MM-DD"),
                )
            })?;
            if cleared.insert(day.to_owned()) {
                let mut on_day = scope.clone();
                on_day.push(eq("day", text(day)));
                transaction::delete("hours_exceptions", &on_day)?;
            }
            let mut values = scope_fields.clone();
            values.push(field("day", text(day)));
            let (opens, closes) = if row.opt_bool("closed")? == Some(true) {
                (None, None)
            } else {
                let opens = minutes_of("opens", row.str("opens", 5..=5)?)?;
                let closes = minutes_of("closes", row.str("closes", 5..=5)?)?;
                values.push(field("opens_minute", integer(opens)));
                values.push(field("closes_minute", integer(closes)));
                (Some(opens), Some(closes))
            };
            transaction::insert("hours_exceptions", &values).map_err(|e| {
                refused(
                    e,
                    &format!("exception on {day}"),
                    opens.unwrap_or(0),
                    closes.unwrap_or(1440),
                )
            })?;
            exceptions += 1;
        }
    }
    Ok(json!({ "weekly": weekly, "exceptions": exceptions }))
}

fn prefixed(mut error: Json, at: &str) -> Json {
    if let Some(message) = error.get("message").and_then(Json::as_str) {
        error["message"] = Json::String(format!("{at}: {message}"));
    }
    error
}

/// A refused row of hours as the caller's error, naming the interval.
fn refused(e: DbError, what: &str, opens: i64, closes: i64) -> Json {
    let interval = format!("{what} {}-{}", hhmm(opens), hhmm(closes));
    let detail = e.detail().to_owned();
    if detail.contains("end_after_start") {
        return error(
            "invalid_hours",
            format!("{interval}: the hours must close after they open"),
        );
    }
    if e.constraint().is_some_and(|c| c.ends_with("_no_overlap")) {
        return error(
            "overlapping_hours",
            format!("{interval} overlaps other hours of the same scope that day"),
        );
    }
    if detail.contains("day_is_date") {
        return error(
            "invalid_day",
            format!("{what}: not a calendar date YYYY-MM-DD"),
        );
    }
    if e.constraint().is_some_and(|c| c.ends_with("_fk")) {
        return error("not_found", "no such service or resource".to_owned());
    }
    e.into()
}

bookhost_sdk::export!(SetOpeningHours with_types_in bookhost_sdk::bindings);

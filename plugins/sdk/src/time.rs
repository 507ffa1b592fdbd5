//! Time as the host sees it: microseconds since the Unix epoch (UTC), shown to callers as RFC 3339.

use chrono::{DateTime, SecondsFormat, Utc};

pub const MICROS_PER_SECOND: i64 = 1_000_000;
pub const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;
pub const MICROS_PER_HOUR: i64 = 60 * MICROS_PER_MINUTE;
pub const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

/// The invocation's clock. wasm32-unknown-unknown has no clock of its own,
/// and a replayed invocation must see the same time, so it is the host's.
pub fn now() -> i64 {
    crate::context::now()
}

/// Parses an RFC 3339 timestamp with any offset; sub-microsecond digits are
/// dropped because that is the database's precision.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_micros())
        .map_err(|e| format!("{s:?} is not an RFC 3339 timestamp ({e})"))
}

/// Formats in UTC with a `Z`, with fractional seconds only when there are
/// some, so whole times read as `2026-12-01T10:00:00Z`.
pub fn format_rfc3339(micros: i64) -> String {
    match DateTime::<Utc>::from_timestamp_micros(micros) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        // Only reachable with a timestamp hundreds of millennia away; a
        // number is still more useful to the caller than a trap.
        None => micros.to_string(),
    }
}

/// The UTC calendar day (`YYYY-MM-DD`) of a timestamp, e.g. for lock keys.
pub fn utc_date(micros: i64) -> String {
    match DateTime::<Utc>::from_timestamp_micros(micros) {
        Some(t) => t.date_naive().to_string(),
        None => micros.div_euclid(MICROS_PER_DAY).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = parse_rfc3339("2026-12-01T10:00:00Z").unwrap();
        assert_eq!(format_rfc3339(t), "2026-12-01T10:00:00Z");
        assert_eq!(utc_date(t), "2026-12-01");
        let t = parse_rfc3339("2026-12-01T01:30:00.25+02:00").unwrap();
        assert_eq!(format_rfc3339(t), "2026-11-30T23:30:00.250Z");
        assert_eq!(utc_date(t), "2026-11-30");
        assert!(parse_rfc3339("2026-12-01 10:00").is_err());
    }
}

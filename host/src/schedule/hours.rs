//! Opening hours as instants: a scope's weekly hours and dated exceptions (falling back on the business's), turned into intervals on the local dates a range touches, across clock changes.

use std::collections::{HashMap, HashSet};

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::rules::{Rules, Scope};

/// A question the rules cannot answer (a zone the host does not know, a
/// range too wide): the caller's input or the stored data is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(pub String);

/// A resolved time zone, or why not.
pub fn time_zone(name: &str) -> Result<TimeZone, ScheduleError> {
    TimeZone::get(name).map_err(|_| {
        ScheduleError(format!(
            "unknown time zone {name:?}: use an IANA name such as \"Europe/Paris\" or \"UTC\""
        ))
    })
}

/// Weekly hours plus dated exceptions, for one scope chain.
#[derive(Debug, Default)]
pub(super) struct Hours {
    /// Index 0 is Monday. None: no weekly hours at all (open all day).
    weekly: Option<[Vec<(i64, i64)>; 7]>,
    /// Exceptions by local date: replace the weekly hours that day.
    exceptions: HashMap<Date, Vec<(i64, i64)>>,
}

impl Hours {
    /// The hours of `scope`, falling back on the business's weekly hours and
    /// exceptions where the scope has none of its own (for a service), or
    /// only its own (for a resource: the business's hours already bound the
    /// service it serves).
    pub(super) fn of(rules: &Rules, scope: &Scope) -> Result<Self, ScheduleError> {
        let own_weekly: Vec<_> = rules.hours.iter().filter(|h| &h.scope() == scope).collect();
        let weekly_rows = if own_weekly.is_empty() && matches!(scope, Scope::Service(_)) {
            rules
                .hours
                .iter()
                .filter(|h| h.scope() == Scope::Business)
                .collect()
        } else {
            own_weekly
        };
        let weekly = (!weekly_rows.is_empty()).then(|| {
            let mut days: [Vec<(i64, i64)>; 7] = Default::default();
            for row in weekly_rows {
                if (1..=7).contains(&row.weekday) {
                    days[(row.weekday - 1) as usize].push((row.opens_minute, row.closes_minute));
                }
            }
            for day in &mut days {
                day.sort_unstable();
            }
            days
        });
        let mut exceptions: HashMap<Date, Vec<(i64, i64)>> = HashMap::new();
        let mut own_days = HashSet::new();
        for pass in [true, false] {
            for row in &rules.exceptions {
                let mine = &row.scope() == scope;
                let business = matches!(scope, Scope::Service(_)) && row.scope() == Scope::Business;
                let day: Date = row
                    .day
                    .parse()
                    .map_err(|e| ScheduleError(format!("exception day {:?}: {e}", row.day)))?;
                // A day the scope has exceptions of its own ignores the
                // business's exceptions that day.
                if (pass && mine) || (!pass && business && !own_days.contains(&day)) {
                    if pass {
                        own_days.insert(day);
                    }
                    let entry = exceptions.entry(day).or_default();
                    if let (Some(opens), Some(closes)) = (row.opens_minute, row.closes_minute) {
                        entry.push((opens, closes));
                    }
                }
            }
        }
        for day in exceptions.values_mut() {
            day.sort_unstable();
        }
        Ok(Self { weekly, exceptions })
    }

    /// Whether any hours bound this scope at all.
    pub(super) fn bounded(&self) -> bool {
        self.weekly.is_some() || !self.exceptions.is_empty()
    }

    /// The open intervals of one local date, in minutes.
    fn minutes_of(&self, date: Date) -> Vec<(i64, i64)> {
        if let Some(day) = self.exceptions.get(&date) {
            return day.clone();
        }
        match &self.weekly {
            Some(weekly) => weekly[(date.weekday().to_monday_one_offset() - 1) as usize].clone(),
            None => vec![(0, 1440)],
        }
    }

    /// The open intervals (instants) of the local dates touching
    /// `[start, end)`, each as the start of its own slot grid.
    pub(super) fn intervals(
        &self,
        tz: &TimeZone,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, i64)>, ScheduleError> {
        let first = local_date(tz, start)?
            .yesterday()
            .map_err(|e| ScheduleError(e.to_string()))?;
        let last = local_date(tz, end)?;
        let mut intervals = Vec::new();
        let mut date = first;
        while date <= last {
            for (opens, closes) in self.minutes_of(date) {
                let from = instant(tz, date, opens, Fold::Earlier)?;
                let until = instant(tz, date, closes, Fold::Later)?;
                if from < until && until > start && from < end {
                    intervals.push((from, until));
                }
            }
            date = date.tomorrow().map_err(|e| ScheduleError(e.to_string()))?;
        }
        Ok(intervals)
    }
}

#[derive(Clone, Copy)]
enum Fold {
    Earlier,
    Later,
}

fn local_date(tz: &TimeZone, micros: i64) -> Result<Date, ScheduleError> {
    let at = Timestamp::from_microsecond(micros).map_err(|e| ScheduleError(e.to_string()))?;
    Ok(at.to_zoned(tz.clone()).date())
}

/// The instant of local `minute` on `date`. A wall-clock time the clocks
/// skip (spring forward) is the instant they skip at; one they repeat
/// (fall back) is its first occurrence for an opening and its second for a
/// closing, so the repeated hour is open when both ends say so.
fn instant(tz: &TimeZone, date: Date, minute: i64, fold: Fold) -> Result<i64, ScheduleError> {
    let wrap = |e: jiff::Error| ScheduleError(e.to_string());
    let (date, minute) = if minute >= 1440 {
        (date.tomorrow().map_err(wrap)?, minute - 1440)
    } else {
        (date, minute)
    };
    let civil: DateTime = date.at((minute / 60) as i8, (minute % 60) as i8, 0, 0);
    let ambiguous = tz.to_ambiguous_zoned(civil);
    let at = match (ambiguous.offset(), fold) {
        // Skipped: the first instant whose wall clock reads at least this
        // time is the transition itself (02:30 on a 02:00 -> 03:00 day opens
        // at 03:00).
        (jiff::tz::AmbiguousOffset::Gap { .. }, _) => {
            let before = ambiguous.earlier().map_err(wrap)?.timestamp();
            tz.following(before)
                .next()
                .map(|transition| transition.timestamp())
                .ok_or_else(|| ScheduleError(format!("no clock change after {before}")))?
        }
        (jiff::tz::AmbiguousOffset::Fold { .. }, Fold::Later) => {
            ambiguous.later().map_err(wrap)?.timestamp()
        }
        _ => ambiguous.compatible().map_err(wrap)?.timestamp(),
    };
    Ok(at.as_microsecond())
}

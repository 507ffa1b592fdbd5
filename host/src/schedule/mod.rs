//! Availability as the host computes it: pure functions of a service's rules and what is booked, with no database and no clock of their own.

mod hours;
mod rules;
mod slots;

pub use hours::{time_zone, ScheduleError};
pub use rules::{
    BookingRow, ExceptionRow, HoldRow, HoursRow, ResourceRules, Rules, Scope, ServiceRules,
};
pub use slots::{Calendar, Refusal, RefusalKind, Request, Slot, MAX_RANGE_DAYS, MICROS_PER_MINUTE};

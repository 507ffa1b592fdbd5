//! Free slots and the verdict on one start, computed from [`Rules`]: hours in local time turned into instants (clock changes included), the slot grid, notice, window, seats, resources and holds.

use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::hours::{time_zone, Hours, ScheduleError};
use super::rules::{Rules, Scope};

pub const MICROS_PER_MINUTE: i64 = 60_000_000;
const MICROS_PER_DAY: i64 = 24 * 60 * MICROS_PER_MINUTE;
/// The widest range one `free-slots` question may span.
pub const MAX_RANGE_DAYS: i64 = 62;

/// A bookable slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub starts_at: i64,
    pub ends_at: i64,
    pub seats_left: u32,
    /// Resources that can take it, the session's own first.
    pub resources: Vec<String>,
}

/// Why a start cannot be booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    OutsideHours,
    OffGrid,
    TooSoon,
    BeyondWindow,
    Overlaps,
    InBuffer,
    Full,
    Held,
    NoResource,
    ResourceNotAllowed,
    HoldNotValid,
}

impl RefusalKind {
    /// The snake_case name errors and JSON use.
    pub fn code(self) -> &'static str {
        match self {
            Self::OutsideHours => "outside_hours",
            Self::OffGrid => "off_grid",
            Self::TooSoon => "too_soon",
            Self::BeyondWindow => "beyond_window",
            Self::Overlaps => "overlaps",
            Self::InBuffer => "in_buffer",
            Self::Full => "full",
            Self::Held => "held",
            Self::NoResource => "no_resource",
            Self::ResourceNotAllowed => "resource_not_allowed",
            Self::HoldNotValid => "hold_not_valid",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub message: String,
}

fn refuse(kind: RefusalKind, message: impl Into<String>) -> Refusal {
    Refusal {
        kind,
        message: message.into(),
    }
}

/// What a `check` asks besides the start.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub starts_at: i64,
    pub resource_id: Option<String>,
    pub hold_id: Option<String>,
    pub moving_booking_id: Option<String>,
}

fn overlaps(a: (i64, i64), b: (i64, i64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// The availability of one service, ready to answer.
pub struct Calendar<'a> {
    rules: &'a Rules,
    tz: TimeZone,
    hours: Hours,
    resource_hours: Vec<(String, TimeZone, Hours)>,
    /// The invocation's clock.
    now: i64,
    duration: i64,
    increment: i64,
    buffer_before: i64,
    buffer_after: i64,
}

impl<'a> Calendar<'a> {
    pub fn new(rules: &'a Rules, now: i64) -> Result<Self, ScheduleError> {
        let tz = time_zone(&rules.time_zone)?;
        let service = &rules.service;
        let hours = Hours::of(rules, &Scope::Service(service.id.clone()))?;
        let mut resource_hours = Vec::new();
        for resource in &rules.resources {
            let zone = match &resource.time_zone {
                Some(name) => time_zone(name)?,
                None => tz.clone(),
            };
            let hours = Hours::of(rules, &Scope::Resource(resource.id.clone()))?;
            resource_hours.push((resource.id.clone(), zone, hours));
        }
        let duration = service.duration_minutes * MICROS_PER_MINUTE;
        Ok(Self {
            rules,
            tz,
            hours,
            resource_hours,
            now,
            duration,
            increment: service
                .slot_increment_minutes
                .map_or(duration, |m| m * MICROS_PER_MINUTE),
            buffer_before: service.buffer_before_minutes * MICROS_PER_MINUTE,
            buffer_after: service.buffer_after_minutes * MICROS_PER_MINUTE,
        })
    }

    /// The bookable slots starting in `[start, end)`, earliest first.
    pub fn free_slots(&self, start: i64, end: i64) -> Result<Vec<Slot>, ScheduleError> {
        if end <= start {
            return Err(ScheduleError(
                "the range must end after it starts".to_owned(),
            ));
        }
        if end - start > MAX_RANGE_DAYS * MICROS_PER_DAY {
            return Err(ScheduleError(format!(
                "the range spans more than {MAX_RANGE_DAYS} days; ask for less at a time"
            )));
        }
        let mut slots = Vec::new();
        for (from, until) in self.hours.intervals(&self.tz, start, end)? {
            let mut at = from;
            while at + self.duration <= until {
                if at >= start && at < end {
                    let request = Request {
                        starts_at: at,
                        ..Request::default()
                    };
                    if let Ok(slot) = self.occupancy(&request) {
                        slots.push(slot);
                    }
                }
                at += self.increment;
            }
        }
        slots.sort_by_key(|s| s.starts_at);
        slots.dedup_by_key(|s| s.starts_at);
        Ok(slots)
    }

    /// Whether `request.starts_at` is bookable. A service bounded by no
    /// hours at all takes any start (as before services had hours).
    pub fn check(&self, request: &Request) -> Result<Result<Slot, Refusal>, ScheduleError> {
        let start = request.starts_at;
        let end = start + self.duration;
        if self.hours.bounded() {
            let intervals = self.hours.intervals(&self.tz, start, end)?;
            let Some((from, _)) = intervals
                .iter()
                .find(|(from, until)| *from <= start && end <= *until)
            else {
                return Ok(Err(refuse(
                    RefusalKind::OutsideHours,
                    format!(
                        "{} to {} is outside the service's opening hours ({})",
                        self.local(start),
                        self.local(end),
                        self.rules.time_zone
                    ),
                )));
            };
            if (start - from) % self.increment != 0 {
                return Ok(Err(refuse(
                    RefusalKind::OffGrid,
                    format!(
                        "slots start every {} minutes from {}; {} is not one of them",
                        self.increment / MICROS_PER_MINUTE,
                        self.local(*from),
                        self.local(start)
                    ),
                )));
            }
        }
        Ok(self.occupancy(request))
    }

    /// A start in the business's local time, for messages.
    fn local(&self, micros: i64) -> String {
        Timestamp::from_microsecond(micros)
            .map(|t| {
                t.to_zoned(self.tz.clone())
                    .strftime("%Y-%m-%d %H:%M %Z")
                    .to_string()
            })
            .unwrap_or_else(|_| micros.to_string())
    }

    /// Notice, window, the service's other sessions, seats, holds and
    /// resources: whether the slot at `request.starts_at` is free.
    fn occupancy(&self, request: &Request) -> Result<Slot, Refusal> {
        let service = &self.rules.service;
        let start = request.starts_at;
        let end = start + self.duration;
        let notice = service.min_notice_minutes * MICROS_PER_MINUTE;
        if start < self.now + notice {
            return Err(refuse(
                RefusalKind::TooSoon,
                if start < self.now {
                    format!("{} is in the past", self.local(start))
                } else {
                    format!(
                        "{} is sooner than the {} minutes' notice this service needs",
                        self.local(start),
                        service.min_notice_minutes
                    )
                },
            ));
        }
        if let Some(days) = service.booking_window_days {
            if start > self.now + days * MICROS_PER_DAY {
                return Err(refuse(
                    RefusalKind::BeyondWindow,
                    format!(
                        "{} is more than {days} days ahead, beyond this service's booking window",
                        self.local(start)
                    ),
                ));
            }
        }
        let blocked = (start - self.buffer_before, end + self.buffer_after);
        let moving = request.moving_booking_id.as_deref();
        let mut seats_taken = 0i64;
        let mut session_resource: Option<&str> = None;
        for booking in self.rules.bookings.iter().filter(|b| b.active()) {
            if Some(booking.id.as_str()) == moving || booking.service_id != service.id {
                continue;
            }
            if booking.starts_at == start {
                seats_taken += 1;
                session_resource = session_resource.or(booking.resource_id.as_deref());
            } else if overlaps((booking.blocked_from, booking.blocked_until), blocked) {
                let kind = if overlaps((booking.starts_at, booking.ends_at), (start, end)) {
                    RefusalKind::Overlaps
                } else {
                    RefusalKind::InBuffer
                };
                return Err(refuse(
                    kind,
                    format!(
                        "{} overlaps the booking at {}{}",
                        self.local(start),
                        self.local(booking.starts_at),
                        if kind == RefusalKind::InBuffer {
                            " with the buffers between them"
                        } else {
                            ""
                        }
                    ),
                ));
            }
        }
        let own_hold = match &request.hold_id {
            Some(id) => {
                let hold = self.rules.holds.iter().find(|h| &h.id == id);
                match hold {
                    Some(h)
                        if h.service_id == service.id
                            && h.starts_at == start
                            && h.expires_at > self.now =>
                    {
                        Some(h)
                    }
                    _ => {
                        return Err(refuse(
                            RefusalKind::HoldNotValid,
                            format!(
                                "hold {id} is not a live hold of this service at {}",
                                self.local(start)
                            ),
                        ))
                    }
                }
            }
            None => None,
        };
        let mut seats_held = 0i64;
        for hold in &self.rules.holds {
            if Some(hold.id.as_str()) == request.hold_id.as_deref()
                || hold.service_id != service.id
                || hold.expires_at <= self.now
            {
                continue;
            }
            if hold.starts_at == start {
                seats_held += 1;
                session_resource = session_resource.or(hold.resource_id.as_deref());
            } else if overlaps((hold.starts_at, hold.ends_at), (start, end)) {
                return Err(refuse(
                    RefusalKind::Held,
                    format!(
                        "{} overlaps a slot held at {} until {}",
                        self.local(start),
                        self.local(hold.starts_at),
                        self.local(hold.expires_at)
                    ),
                ));
            }
        }
        if seats_taken >= service.capacity {
            return Err(refuse(
                RefusalKind::Full,
                format!(
                    "every seat ({}) of the session at {} is booked",
                    service.capacity,
                    self.local(start)
                ),
            ));
        }
        if seats_taken + seats_held >= service.capacity {
            return Err(refuse(
                RefusalKind::Held,
                format!(
                    "the {} seat(s) left at {} are held for other customers",
                    service.capacity - seats_taken,
                    self.local(start)
                ),
            ));
        }
        let seats_left = (service.capacity - seats_taken - seats_held) as u32;
        let session_resource = own_hold
            .and_then(|h| h.resource_id.as_deref())
            .or(session_resource);
        let resources = self.free_resources(request, blocked, session_resource)?;
        Ok(Slot {
            starts_at: start,
            ends_at: end,
            seats_left,
            resources,
        })
    }

    /// The resources that can take the slot: linked to the service, asked
    /// for (if one was), the session's own (if it has one), open then, and
    /// in no other session overlapping it (buffers included).
    fn free_resources(
        &self,
        request: &Request,
        blocked: (i64, i64),
        session_resource: Option<&str>,
    ) -> Result<Vec<String>, Refusal> {
        let service = &self.rules.service;
        let start = request.starts_at;
        let end = start + self.duration;
        if self.rules.resources.is_empty() {
            if let Some(asked) = &request.resource_id {
                return Err(refuse(
                    RefusalKind::ResourceNotAllowed,
                    format!("this service needs no resource; {asked} cannot be booked with it"),
                ));
            }
            return Ok(Vec::new());
        }
        if let Some(asked) = &request.resource_id {
            if !self.rules.resources.iter().any(|r| &r.id == asked) {
                return Err(refuse(
                    RefusalKind::ResourceNotAllowed,
                    format!("resource {asked} does not serve this service"),
                ));
            }
        }
        let mut free = Vec::new();
        let mut why = Vec::new();
        for (id, zone, hours) in &self.resource_hours {
            let name = self
                .rules
                .resources
                .iter()
                .find(|r| &r.id == id)
                .map_or(id.as_str(), |r| r.name.as_str());
            if request
                .resource_id
                .as_ref()
                .is_some_and(|asked| asked != id)
            {
                continue;
            }
            if session_resource.is_some_and(|session| session != id) {
                continue;
            }
            if hours.bounded() {
                let open = hours
                    .intervals(zone, start, end)
                    .map_err(|e| refuse(RefusalKind::NoResource, e.0))?
                    .iter()
                    .any(|(from, until)| *from <= start && end <= *until);
                if !open {
                    why.push(format!("{name} is not working then"));
                    continue;
                }
            }
            let moving = request.moving_booking_id.as_deref();
            let busy_booking = self.rules.bookings.iter().any(|b| {
                b.active()
                    && Some(b.id.as_str()) != moving
                    && b.resource_id.as_deref() == Some(id.as_str())
                    && !(b.service_id == service.id && b.starts_at == start)
                    && overlaps((b.blocked_from, b.blocked_until), blocked)
            });
            let busy_hold = self.rules.holds.iter().any(|h| {
                Some(h.id.as_str()) != request.hold_id.as_deref()
                    && h.expires_at > self.now
                    && h.resource_id.as_deref() == Some(id.as_str())
                    && !(h.service_id == service.id && h.starts_at == start)
                    && overlaps((h.starts_at, h.ends_at), (start, end))
            });
            if busy_booking || busy_hold {
                why.push(format!("{name} is busy then"));
                continue;
            }
            free.push(id.clone());
        }
        if free.is_empty() {
            let why = if why.is_empty() {
                "the resource this session uses is not among them".to_owned()
            } else {
                why.join("; ")
            };
            return Err(refuse(
                RefusalKind::NoResource,
                format!("no resource can take {}: {why}", self.local(start)),
            ));
        }
        Ok(free)
    }

    /// Whether bookings of this service wait for a confirmation.
    pub fn requires_confirmation(&self) -> bool {
        self.rules.service.requires_confirmation
    }
}

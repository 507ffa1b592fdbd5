//! What availability is computed from: a service's rules, its resources, the hours, the exceptions, and the bookings and holds in the way, as the database hands them over.

use serde::Deserialize;

/// Everything one availability question needs, read in one statement inside
/// the asking transaction (`db::schedule`). Times are microseconds since the
/// Unix epoch; wall-clock times are minutes after local midnight.
#[derive(Debug, Clone, Deserialize)]
pub struct Rules {
    /// The business's IANA time zone.
    pub time_zone: String,
    pub service: ServiceRules,
    /// The resources that can serve the service (none: it needs none).
    #[serde(default)]
    pub resources: Vec<ResourceRules>,
    /// Weekly hours of the service, its resources and the business.
    #[serde(default)]
    pub hours: Vec<HoursRow>,
    /// Dated exceptions of the same scopes, around the range asked.
    #[serde(default)]
    pub exceptions: Vec<ExceptionRow>,
    /// Active bookings of the service or its resources around the range.
    #[serde(default)]
    pub bookings: Vec<BookingRow>,
    /// Holds not yet expired, of the service or its resources.
    #[serde(default)]
    pub holds: Vec<HoldRow>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServiceRules {
    pub id: String,
    pub duration_minutes: i64,
    pub buffer_before_minutes: i64,
    pub buffer_after_minutes: i64,
    pub capacity: i64,
    pub min_notice_minutes: i64,
    pub booking_window_days: Option<i64>,
    pub slot_increment_minutes: Option<i64>,
    pub requires_confirmation: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResourceRules {
    pub id: String,
    pub name: String,
    /// None: the business's time zone.
    pub time_zone: Option<String>,
}

/// Whose hours a row gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Business,
    Service(String),
    Resource(String),
}

#[derive(Debug, Clone, Deserialize)]
pub struct HoursRow {
    pub service_id: Option<String>,
    pub resource_id: Option<String>,
    /// ISO weekday, 1 (Monday) to 7.
    pub weekday: i64,
    pub opens_minute: i64,
    pub closes_minute: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ExceptionRow {
    pub service_id: Option<String>,
    pub resource_id: Option<String>,
    /// YYYY-MM-DD, local.
    pub day: String,
    /// Both None: closed all day.
    pub opens_minute: Option<i64>,
    pub closes_minute: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BookingRow {
    pub id: String,
    pub service_id: String,
    pub resource_id: Option<String>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub blocked_from: i64,
    pub blocked_until: i64,
    /// pending and confirmed hold their slot; cancelled and completed not.
    pub status: String,
}

impl BookingRow {
    /// Whether it holds its slot.
    pub fn active(&self) -> bool {
        matches!(self.status.as_str(), "pending" | "confirmed")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct HoldRow {
    pub id: String,
    pub service_id: String,
    pub resource_id: Option<String>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub expires_at: i64,
}

impl HoursRow {
    pub fn scope(&self) -> Scope {
        scope_of(&self.service_id, &self.resource_id)
    }
}

impl ExceptionRow {
    pub fn scope(&self) -> Scope {
        scope_of(&self.service_id, &self.resource_id)
    }
}

fn scope_of(service: &Option<String>, resource: &Option<String>) -> Scope {
    match (service, resource) {
        (Some(service), _) => Scope::Service(service.clone()),
        (None, Some(resource)) => Scope::Resource(resource.clone()),
        (None, None) => Scope::Business,
    }
}

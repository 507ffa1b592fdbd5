"""create-booking-py: the create-booking executor in Python, written as
naively (check for an overlap, then insert, no lock); the host keeps it safe."""

import re

import bookhost
from bookhost import CapabilityError, asc, db, eq, gt, is_in, lt, refuse, text, time, timestamp, uuid

ACTIVE = [text("pending"), text("confirmed")]
SUGGESTION_WINDOW = 7 * time.MICROS_PER_DAY
MAX_SUGGESTIONS = 3
COLUMNS = ["id", "service_id", "customer", "starts_at", "ends_at", "status"]
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def free_starts(start, duration, window_end, now, busy, limit):
    """Up to ``limit`` starts ``start + k*duration`` (k >= 1), before
    ``window_end``, not before ``now``, overlapping no busy interval."""
    found = []
    if duration <= 0:
        return found
    k = max(1, -((start - now) // duration))
    while len(found) < limit:
        candidate = start + k * duration
        if candidate >= window_end:
            break
        end = candidate + duration
        if not any(b_start < end and b_end > candidate for b_start, b_end in busy):
            found.append(candidate)
        k += 1
    return found


def overlapping(service, start, end, limit=None):
    return db.query(
        "bookings",
        [eq("service_id", uuid(service)), is_in("status", ACTIVE), lt("starts_at", timestamp(end)), gt("ends_at", timestamp(start))],
        [asc("starts_at")],
        limit,
    )


def slot_taken(service, start, duration):
    try:
        window_end = start + SUGGESTION_WINDOW
        busy = [(r.timestamp("starts_at"), r.timestamp("ends_at")) for r in overlapping(service, start, window_end + duration)]
        suggested = free_starts(start, duration, window_end, time.now(), busy, MAX_SUGGESTIONS)
    except CapabilityError as error:
        # The answer is still "slot taken"; suggestions are a courtesy.
        bookhost.log("warn", f"could not compute suggested starts: {error}")
        suggested = []
    refuse(
        "slot_taken",
        f"the slot starting {time.format(start)} overlaps another booking of this service",
        suggested_starts=[time.format(s) for s in suggested],
    )


def create_booking(input):
    if not UUID.match(input["service_id"]):
        refuse("invalid_input", f'"service_id" must be a UUID, got {input["service_id"]!r}')
    service = input["service_id"].lower()
    start = time.parse(input["start"])

    services = db.query("services", [eq("id", uuid(service))], limit=1)
    if not services:
        refuse("service_not_found", f"no service with id {service}")
    duration = services[0].integer("duration_minutes") * time.MICROS_PER_MINUTE
    end = start + duration

    if overlapping(service, start, end, limit=1):
        slot_taken(service, start, duration)
    try:
        row = db.insert(
            "bookings",
            {
                "service_id": uuid(service),
                "customer": text(input["customer"]),
                "starts_at": timestamp(start),
                "ends_at": timestamp(end),
                "status": text("confirmed"),
            },
        )
    except CapabilityError as error:
        # Another invocation took the slot between the check and the insert.
        if error.is_conflict_on("bookings_no_overlap"):
            slot_taken(service, start, duration)
        raise
    return {"booking": row.to_json(COLUMNS)}


WitWorld = bookhost.executor(
    name="create-booking-py",
    description=(
        "Book a time slot on a service for a customer (Python). Give the service's id, the "
        "customer's name and the start time as an RFC 3339 timestamp in UTC (e.g. "
        '"2026-12-01T10:00:00Z"); the booking lasts the service\'s duration and is confirmed '
        'immediately. On success the answer is {"booking": {"id", "service_id", "customer", '
        '"starts_at", "ends_at", "status"}}. If the slot overlaps another pending or confirmed '
        'booking of the service, the answer is the error "slot_taken" with "suggested_starts": up '
        "to 3 free start times within the following 7 days (none in the past). Other errors: "
        '"service_not_found", "invalid_input".'
    ),
    input_schema={
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "create-booking-py input",
        "type": "object",
        "properties": {
            "service_id": {"type": "string", "format": "uuid", "description": "Id of the service to book."},
            "customer": {"type": "string", "minLength": 1, "maxLength": 200, "description": "Name of the customer."},
            "start": {"type": "string", "format": "date-time", "description": "Start of the booking, RFC 3339 in UTC."},
        },
        "required": ["service_id", "customer", "start"],
        "additionalProperties": False,
    },
    capabilities=["query:services", "query:bookings", "insert:bookings"],
    execute=create_booking,
)

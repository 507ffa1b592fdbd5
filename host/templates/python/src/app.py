"""{{name}}: books a slot on a service for a customer, the naive way: look
for an overlapping booking, then insert, with no lock. bookhost keeps it safe:
every invocation is one serializable transaction, replayed from the start when
it collides with another, and the database's exclusion constraint is the last
wall, so even 64 concurrent calls for one slot book it once."""

import bookhost
from bookhost import CapabilityError, db, eq, gt, is_in, lt, refuse, text, time, timestamp, uuid

ACTIVE = [text("pending"), text("confirmed")]


def book(input):
    start = time.parse(input["start"])
    services = db.query("services", [eq("id", uuid(input["service_id"]))], limit=1)
    if not services:
        refuse("service_not_found", f"no service with id {input['service_id']}")
    end = start + services[0].integer("duration_minutes") * time.MICROS_PER_MINUTE

    overlapping = db.query(
        "bookings",
        [eq("service_id", uuid(input["service_id"])), is_in("status", ACTIVE), lt("starts_at", timestamp(end)), gt("ends_at", timestamp(start))],
        limit=1,
    )
    if overlapping:
        refuse("slot_taken", f"{input['start']} overlaps another booking")
    try:
        booking = db.insert(
            "bookings",
            {
                "service_id": uuid(input["service_id"]),
                "customer": text(input["customer"]),
                "starts_at": timestamp(start),
                "ends_at": timestamp(end),
                "status": text("confirmed"),
            },
        )
    except CapabilityError as error:
        # The database's last wall: a concurrent booking won the slot.
        if error.is_conflict_on("bookings_no_overlap"):
            refuse("slot_taken", f"{input['start']} overlaps another booking")
        raise
    return {"booking": booking.to_json(["id", "customer", "starts_at", "ends_at", "status"])}


WitWorld = bookhost.executor(
    name="{{name}}",
    # Written for the agent that will call it: what it does, what it answers.
    description=(
        "Book a slot on a service for a customer. Give the service's id, the customer's name and "
        'the start as an RFC 3339 timestamp in UTC (e.g. "2030-01-07T11:00:00Z"); the booking '
        "lasts the service's duration. Answers {\"booking\": {...}}, or the error \"slot_taken\" "
        'when the slot overlaps another booking, or "service_not_found".'
    ),
    input_schema={
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "service_id": {"type": "string", "format": "uuid"},
            "customer": {"type": "string", "minLength": 1, "maxLength": 200},
            "start": {"type": "string", "format": "date-time"},
        },
        "required": ["service_id", "customer", "start"],
        "additionalProperties": False,
    },
    # Everything it may touch; the host refuses any other call.
    capabilities=["query:services", "query:bookings", "insert:bookings"],
    execute=book,
)

// {{name}}: books a slot on a service for a customer, the naive way: look for
// an overlapping booking, then insert, with no lock. bookhost keeps it safe:
// every invocation is one serializable transaction, replayed from the start
// when it collides with another, and the database's exclusion constraint is
// the last wall, so even 64 concurrent calls for one slot book it once.

import {
  db, eq, executor, gt, isIn, lt, read, refuse, text, time, timestamp, toJson, uuid,
  CapabilityError, type Json,
} from "@bookhost/sdk";

interface Input {
  service_id: string;
  customer: string;
  start: string;
}

const ACTIVE = [text("pending"), text("confirmed")];

export const { describe, execute } = executor<Input>({
  name: "{{name}}",
  // Written for the agent that will call it: what it does, what it answers.
  description:
    "Book a slot on a service for a customer. Give the service's id, the customer's name and " +
    'the start as an RFC 3339 timestamp in UTC (e.g. "2030-01-07T11:00:00Z"); the booking ' +
    'lasts the service\'s duration. Answers {"booking": {...}}, or the error "slot_taken" ' +
    'when the slot overlaps another booking, or "service_not_found".',
  inputSchema: {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    type: "object",
    properties: {
      service_id: { type: "string", format: "uuid" },
      customer: { type: "string", minLength: 1, maxLength: 200 },
      start: { type: "string", format: "date-time" },
    },
    required: ["service_id", "customer", "start"],
    additionalProperties: false,
  },
  // Everything it may touch; the host refuses any other call.
  capabilities: ["query:services", "query:bookings", "insert:bookings"],

  execute(input): Json {
    const start = time.parse(input.start);
    const [service] = db.query("services", [eq("id", uuid(input.service_id))], { limit: 1 });
    if (!service) refuse("service_not_found", `no service with id ${input.service_id}`);
    const end = start + BigInt(read.integer(service, "duration_minutes")) * time.MICROS_PER_MINUTE;

    const overlapping = db.query(
      "bookings",
      [eq("service_id", uuid(input.service_id)), isIn("status", ACTIVE), lt("starts_at", timestamp(end)), gt("ends_at", timestamp(start))],
      { limit: 1 },
    );
    if (overlapping.length > 0) refuse("slot_taken", `${input.start} overlaps another booking`);

    try {
      const booking = db.insert("bookings", {
        service_id: uuid(input.service_id),
        customer: text(input.customer),
        starts_at: timestamp(start),
        ends_at: timestamp(end),
        status: text("confirmed"),
      });
      return { booking: toJson(booking, ["id", "customer", "starts_at", "ends_at", "status"]) };
    } catch (error) {
      // The database's last wall: a concurrent booking won the slot.
      if (error instanceof CapabilityError && error.isConflictOn("bookings_no_overlap")) {
        refuse("slot_taken", `${input.start} overlaps another booking`);
      }
      throw error;
    }
  },
});

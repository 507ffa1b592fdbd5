// reschedule-booking-ts: reschedule-booking in TypeScript — one UPDATE moves
// the booking, so the old slot is freed only if the new one is taken;
// naively, check the new slot, then update.

import {
  db, eq, executor, NULL, read, refuse, slots, time, timestamp, toJson, uuid, CapabilityError, type Json,
} from "@bookhost/sdk";

const COLUMNS = ["id", "service_id", "customer", "starts_at", "ends_at", "status", "resource_id"];
const SLOT_CONSTRAINTS = ["bookings_no_overlap", "bookings_one_session_at_a_time", "bookings_resource_no_overlap"];

interface Input {
  booking_id: string;
  start: string;
  resource_id?: string;
}

function booking(id: string) {
  const rows = db.query("bookings", [eq("id", uuid(id))], { limit: 1 });
  if (rows.length === 0) refuse("booking_not_found", `no booking with id ${id}`);
  return rows[0];
}

export const { describe, execute } = executor<Input>({
  name: "reschedule-booking-ts",
  description:
    "Move a pending or confirmed booking to a new start (RFC 3339, UTC), optionally to another " +
    '"resource_id" (TypeScript). If the new slot cannot be taken the booking stays where it ' +
    'was. On success: {"booking": {...}, "previous": {"starts_at", "ends_at", "resource_id"}}. ' +
    'Errors: "booking_cancelled", "booking_completed", "slot_taken", "slot_held", ' +
    '"outside_hours", "off_grid", "too_soon", "beyond_window", "in_buffer", "no_resource", ' +
    '"resource_not_allowed", "booking_not_found", "invalid_input".',
  inputSchema: {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "reschedule-booking-ts input",
    type: "object",
    properties: {
      booking_id: { type: "string", format: "uuid" },
      start: { type: "string", format: "date-time" },
      resource_id: { type: "string", format: "uuid" },
    },
    required: ["booking_id", "start"],
    additionalProperties: false,
  },
  capabilities: ["availability", "query:services", "query:bookings", "update:bookings"],

  execute(input): Json {
    const id = input.booking_id.toLowerCase();
    const start = time.parse(input.start);
    const current = booking(id);
    const status = read.text(current, "status");
    if (status === "cancelled") refuse("booking_cancelled", `booking ${id} was cancelled; book a new slot instead`);
    if (status === "completed") refuse("booking_completed", `booking ${id} is completed; it cannot be moved`);
    const service = read.uuid(current, "service_id");
    const services = db.query("services", [eq("id", uuid(service))], { limit: 1 });
    if (services.length === 0) refuse("service_not_found", `no service ${service}`);
    const end = start + BigInt(read.integer(services[0], "duration_minutes")) * time.MICROS_PER_MINUTE;
    const verdict = slots.check(service, start, {
      resourceId: input.resource_id?.toLowerCase(),
      movingBookingId: id,
    });
    if (!verdict.ok) return slots.refuse(verdict.refusal);
    const resource = verdict.slot.resources[0];
    try {
      db.update("bookings", [eq("id", uuid(id))], {
        starts_at: timestamp(start),
        ends_at: timestamp(end),
        resource_id: resource === undefined ? NULL : uuid(resource),
      });
    } catch (error) {
      if (error instanceof CapabilityError && SLOT_CONSTRAINTS.some((c) => error.isConflictOn(c))) {
        refuse("slot_taken", `the slot starting ${time.format(start)} is taken: ${error.detail}`);
      }
      throw error;
    }
    return {
      booking: toJson(booking(id), COLUMNS),
      previous: toJson(current, ["starts_at", "ends_at", "resource_id"]),
    };
  },
});

// confirm-booking-ts: confirm-booking in TypeScript — naively, read the
// booking's status, then update it; the host makes two confirmations of one
// booking confirm it once.

import { db, eq, executor, read, refuse, text, toJson, uuid, type Json } from "@bookhost/sdk";

const COLUMNS = ["id", "service_id", "customer", "starts_at", "ends_at", "status", "resource_id"];

interface Input {
  booking_id: string;
}

function booking(id: string) {
  const rows = db.query("bookings", [eq("id", uuid(id))], { limit: 1 });
  if (rows.length === 0) refuse("booking_not_found", `no booking with id ${id}`);
  return rows[0];
}

export const { describe, execute } = executor<Input>({
  name: "confirm-booking-ts",
  description:
    "Confirm a pending booking by its id (TypeScript). On success: {\"booking\": {...}} with " +
    'status "confirmed". Errors: "already_confirmed", "booking_cancelled", ' +
    '"booking_not_pending", "booking_not_found", "invalid_input".',
  inputSchema: {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "confirm-booking-ts input",
    type: "object",
    properties: { booking_id: { type: "string", format: "uuid" } },
    required: ["booking_id"],
    additionalProperties: false,
  },
  capabilities: ["query:bookings", "update:bookings"],

  execute(input): Json {
    const id = input.booking_id.toLowerCase();
    const status = read.text(booking(id), "status");
    if (status === "confirmed") refuse("already_confirmed", `booking ${id} is already confirmed`);
    if (status === "cancelled") refuse("booking_cancelled", `booking ${id} was cancelled; it cannot be confirmed`);
    if (status !== "pending") refuse("booking_not_pending", `booking ${id} is ${status}, not pending`);
    db.update("bookings", [eq("id", uuid(id))], { status: text("confirmed") });
    return { booking: toJson(booking(id), COLUMNS) };
  },
});

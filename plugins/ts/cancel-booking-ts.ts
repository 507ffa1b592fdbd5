// cancel-booking-ts: cancel-booking in TypeScript — the slot is free again at
// once (constraints and availability count only pending and confirmed
// bookings).

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
  name: "cancel-booking-ts",
  description:
    "Cancel a pending or confirmed booking by its id; its slot is free again at once " +
    '(TypeScript). On success: {"booking": {...}} with status "cancelled". Errors: ' +
    '"already_cancelled", "booking_completed", "booking_not_found", "invalid_input".',
  inputSchema: {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "cancel-booking-ts input",
    type: "object",
    properties: { booking_id: { type: "string", format: "uuid" } },
    required: ["booking_id"],
    additionalProperties: false,
  },
  capabilities: ["query:bookings", "update:bookings"],

  execute(input): Json {
    const id = input.booking_id.toLowerCase();
    const status = read.text(booking(id), "status");
    if (status === "cancelled") refuse("already_cancelled", `booking ${id} is already cancelled`);
    if (status === "completed") refuse("booking_completed", `booking ${id} is completed; it cannot be cancelled`);
    db.update("bookings", [eq("id", uuid(id))], { status: text("cancelled") });
    return { booking: toJson(booking(id), COLUMNS) };
  },
});

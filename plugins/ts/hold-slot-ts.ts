// hold-slot-ts: hold-slot in TypeScript — naively, ask the host's
// availability, then insert the hold; nothing in the database stops two
// holds colliding, only the host's discipline.

import { db, eq, executor, read, refuse, slots, text, time, timestamp, toJson, uuid, type Json } from "@bookhost/sdk";

const COLUMNS = ["id", "service_id", "resource_id", "customer", "starts_at", "ends_at", "expires_at"];

interface Input {
  service_id: string;
  customer: string;
  start: string;
  minutes?: number;
  resource_id?: string;
}

export const { describe, execute } = executor<Input>({
  name: "hold-slot-ts",
  description:
    "Hold a slot of a service for a customer for \"minutes\" (1 to 60, default 10) (TypeScript). " +
    'On success: {"hold": {...}}; pass its id as "hold_id" to create-booking. Errors: ' +
    '"slot_taken", "slot_held", "outside_hours", "off_grid", "too_soon", "beyond_window", ' +
    '"in_buffer", "no_resource", "resource_not_allowed", "service_not_found", "invalid_input".',
  inputSchema: {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "hold-slot-ts input",
    type: "object",
    properties: {
      service_id: { type: "string", format: "uuid" },
      customer: { type: "string", minLength: 1, maxLength: 200 },
      start: { type: "string", format: "date-time" },
      minutes: { type: "integer", minimum: 1, maximum: 60 },
      resource_id: { type: "string", format: "uuid" },
    },
    required: ["service_id", "customer", "start"],
    additionalProperties: false,
  },
  capabilities: ["availability", "query:services", "insert:holds"],

  execute(input): Json {
    const service = input.service_id.toLowerCase();
    const start = time.parse(input.start);
    const services = db.query("services", [eq("id", uuid(service))], { limit: 1 });
    if (services.length === 0) refuse("service_not_found", `no service with id ${service}`);
    const end = start + BigInt(read.integer(services[0], "duration_minutes")) * time.MICROS_PER_MINUTE;
    const verdict = slots.check(service, start, { resourceId: input.resource_id?.toLowerCase() });
    if (!verdict.ok) return slots.refuse(verdict.refusal);
    const values: Record<string, ReturnType<typeof uuid>> = {
      service_id: uuid(service),
      customer: text(input.customer),
      starts_at: timestamp(start),
      ends_at: timestamp(end),
      expires_at: timestamp(time.now() + BigInt(input.minutes ?? 10) * time.MICROS_PER_MINUTE),
    };
    const resource = verdict.slot.resources[0];
    if (resource !== undefined) values.resource_id = uuid(resource);
    return { hold: toJson(db.insert("holds", values), COLUMNS) };
  },
});

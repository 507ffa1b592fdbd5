// request-appointment-ts: request-appointment in TypeScript — naively, look
// for a pending request, then insert, with no lock; the host keeps it safe.

import { db, eq, executor, read, refuse, text, time, timestamp, toJson, CapabilityError, type Json, type Value } from "@bookhost/sdk";

interface Input {
  customer: string;
  pet: string;
  preferred_start?: string | null;
}

export const { describe, execute } = executor<Input>({
  name: "request-appointment-ts",
  description:
    "Ask for an appointment for a pet; staff schedule it later (TypeScript). Give the customer's " +
    "name, the pet's name and, optionally, a preferred start time (RFC 3339 in UTC, e.g. " +
    '"2026-12-01T10:00:00Z"). A pet can have only one pending request: if it already has one, the ' +
    'answer is the error "pending_request_exists" (with its "request_id" when known). On success the ' +
    'answer is {"request": {"id", "customer", "pet", "status"}} with status "pending". Other errors: ' +
    '"invalid_input".',
  inputSchema: {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "request-appointment-ts input",
    type: "object",
    properties: {
      customer: { type: "string", minLength: 1, maxLength: 200, description: "Name of the pet's owner." },
      pet: { type: "string", minLength: 1, maxLength: 200, description: "Name of the pet the appointment is for." },
      preferred_start: {
        type: ["string", "null"],
        format: "date-time",
        description: "Optional preferred start, RFC 3339 in UTC.",
      },
    },
    required: ["customer", "pet"],
    additionalProperties: false,
  },
  capabilities: ["query:booking_requests", "insert:booking_requests"],

  execute(input): Json {
    const pending = db.query("booking_requests", [eq("pet", text(input.pet)), eq("status", text("pending"))], { limit: 1 });
    if (pending.length > 0) {
      refuse("pending_request_exists", `${input.pet} already has a pending appointment request`, {
        request_id: read.uuid(pending[0], "id"),
      });
    }

    const values: Record<string, Value> = {
      customer: text(input.customer),
      pet: text(input.pet),
      status: text("pending"),
    };
    if (input.preferred_start != null) values.preferred_start = timestamp(time.parse(input.preferred_start));
    try {
      const row = db.insert("booking_requests", values);
      return { request: toJson(row, ["id", "customer", "pet", "status"]) };
    } catch (error) {
      // The only constraint this insert can hit is the partial unique index
      // `booking_requests_one_pending_per_pet`: a concurrent request won.
      if (error instanceof CapabilityError && error.kind === "conflict") {
        refuse("pending_request_exists", `${input.pet} already has a pending appointment request (${error.constraint})`);
      }
      throw error;
    }
  },
});

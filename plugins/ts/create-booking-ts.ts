// create-booking-ts: the create-booking executor in TypeScript — written as
// naively (check for an overlap, then insert, no lock); the host keeps it safe.

import {
  asc, db, eq, executor, gt, isIn, log, lt, read, refuse, text, time, timestamp, toJson, uuid,
  CapabilityError, type Json,
} from "@bookhost/sdk";

const ACTIVE = [text("pending"), text("confirmed")];
const SUGGESTION_WINDOW = 7n * time.MICROS_PER_DAY;
const MAX_SUGGESTIONS = 3;
const COLUMNS = ["id", "service_id", "customer", "starts_at", "ends_at", "status"];
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

interface Input {
  service_id: string;
  customer: string;
  start: string;
}

/** Up to `max` starts `start + k*duration` (k >= 1), before `windowEnd`, not
 * before `now`, overlapping no busy interval (sorted by start). */
export function freeStarts(
  start: bigint, duration: bigint, windowEnd: bigint, now: bigint, busy: [bigint, bigint][], max: number,
): bigint[] {
  const found: bigint[] = [];
  if (duration <= 0n) return found;
  const ceil = (a: bigint, b: bigint) => (a >= 0n ? (a + b - 1n) / b : a / b);
  let k = ceil(now - start, duration);
  if (k < 1n) k = 1n;
  let first = 0;
  while (found.length < max) {
    const candidate = start + k * duration;
    if (candidate >= windowEnd) break;
    const end = candidate + duration;
    while (first < busy.length && busy[first][1] <= candidate) first++;
    let taken = false;
    for (let i = first; i < busy.length && busy[i][0] < end; i++) {
      if (busy[i][1] > candidate) {
        taken = true;
        break;
      }
    }
    if (!taken) found.push(candidate);
    k += 1n;
  }
  return found;
}

function suggest(service: string, start: bigint, duration: bigint): bigint[] {
  const windowEnd = start + SUGGESTION_WINDOW;
  const rows = db.query(
    "bookings",
    [eq("service_id", uuid(service)), isIn("status", ACTIVE), lt("starts_at", timestamp(windowEnd + duration)), gt("ends_at", timestamp(start))],
    { order: [asc("starts_at")] },
  );
  const busy = rows
    .map((r): [bigint, bigint] => [read.timestamp(r, "starts_at"), read.timestamp(r, "ends_at")])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return freeStarts(start, duration, windowEnd, time.now(), busy, MAX_SUGGESTIONS);
}

function slotTaken(service: string, start: bigint, duration: bigint): never {
  let suggested: bigint[] = [];
  try {
    suggested = suggest(service, start, duration);
  } catch (error) {
    // The answer is still "slot taken"; suggestions are a courtesy.
    log("warn", `could not compute suggested starts: ${error}`);
  }
  refuse("slot_taken", `the slot starting ${time.format(start)} overlaps another booking of this service`, {
    suggested_starts: suggested.map(time.format),
  });
}

export const { describe, execute } = executor<Input>({
  name: "create-booking-ts",
  description:
    "Book a time slot on a service for a customer (TypeScript). Give the service's id, the " +
    "customer's name and the start time as an RFC 3339 timestamp in UTC (e.g. " +
    '"2026-12-01T10:00:00Z"); the booking lasts the service\'s duration and is confirmed ' +
    'immediately. On success the answer is {"booking": {"id", "service_id", "customer", ' +
    '"starts_at", "ends_at", "status"}}. If the slot overlaps another pending or confirmed ' +
    'booking of the service, the answer is the error "slot_taken" with "suggested_starts": up ' +
    "to 3 free start times within the following 7 days (none in the past). Other errors: " +
    '"service_not_found", "invalid_input".',
  inputSchema: {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "create-booking-ts input",
    type: "object",
    properties: {
      service_id: { type: "string", format: "uuid", description: "Id of the service to book." },
      customer: { type: "string", minLength: 1, maxLength: 200, description: "Name of the customer." },
      start: { type: "string", format: "date-time", description: "Start of the booking, RFC 3339 in UTC." },
    },
    required: ["service_id", "customer", "start"],
    additionalProperties: false,
  },
  capabilities: ["query:services", "query:bookings", "insert:bookings"],

  execute(input): Json {
    if (!UUID.test(input.service_id)) refuse("invalid_input", `"service_id" must be a UUID, got ${JSON.stringify(input.service_id)}`);
    const service = input.service_id.toLowerCase();
    const start = time.parse(input.start);

    const services = db.query("services", [eq("id", uuid(service))], { limit: 1 });
    if (services.length === 0) refuse("service_not_found", `no service with id ${service}`);
    const duration = BigInt(read.integer(services[0], "duration_minutes")) * time.MICROS_PER_MINUTE;
    const end = start + duration;

    const overlapping = db.query(
      "bookings",
      [eq("service_id", uuid(service)), isIn("status", ACTIVE), lt("starts_at", timestamp(end)), gt("ends_at", timestamp(start))],
      { limit: 1 },
    );
    if (overlapping.length > 0) slotTaken(service, start, duration);

    try {
      const row = db.insert("bookings", {
        service_id: uuid(service),
        customer: text(input.customer),
        starts_at: timestamp(start),
        ends_at: timestamp(end),
        status: text("confirmed"),
      });
      return { booking: toJson(row, COLUMNS) };
    } catch (error) {
      // Another invocation took the slot between the check and the insert.
      if (error instanceof CapabilityError && error.isConflictOn("bookings_no_overlap")) {
        slotTaken(service, start, duration);
      }
      throw error;
    }
  },
});

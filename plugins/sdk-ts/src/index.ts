// The bookhost executor SDK for TypeScript: typed capabilities over the WIT
// imports (types generated from wit/ by `jco types`), value and condition
// helpers, errors as exceptions, and the describe/execute wiring.
//
// An executor is a module that exports `describe` and `execute`:
//
//   import { executor, db, eq, uuid, refuse } from "@bookhost/sdk";
//   export const { describe, execute } = executor({
//     name: "my-action", description: "...", inputSchema: {...},
//     capabilities: ["query:services"],
//     async execute(input) { ... return { ok: true }; },
//   });

import * as availability from "bookhost:executor/availability@0.1.1";
import * as context from "bookhost:executor/context@0.1.1";
import * as transaction from "bookhost:executor/transaction@0.1.1";
import type * as wit from "../generated/interfaces/bookhost-executor-types.js";
import type * as witSlots from "../generated/interfaces/bookhost-executor-availability.js";

export type Value = wit.Value;
export type Field = wit.Field;
export type Row = wit.Row;
export type Condition = wit.Condition;
export type OrderBy = wit.OrderBy;
export type Manifest = wit.Manifest;
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

// ---------------------------------------------------------------- values

export const NULL: Value = { tag: "null" };

export function text(value: string): Value {
  return { tag: "text", val: value };
}

export function integer(value: number | bigint): Value {
  return { tag: "integer", val: BigInt(value) };
}

export function float(value: number): Value {
  return { tag: "float", val: value };
}

export function boolean(value: boolean): Value {
  return { tag: "boolean", val: value };
}

export function uuid(value: string): Value {
  return { tag: "uuid", val: value };
}

/** A JSON column: any JSON-serializable value. */
export function json(value: unknown): Value {
  return { tag: "json", val: JSON.stringify(value) };
}

/** A point in time: microseconds since the epoch (UTC), a Date, or RFC 3339 text. */
export function timestamp(value: bigint | Date | string): Value {
  const micros =
    typeof value === "bigint"
      ? value
      : typeof value === "string"
        ? time.parse(value)
        : BigInt(value.getTime()) * 1000n;
  return { tag: "timestamp", val: micros };
}

export function field(column: string, value: Value): Field {
  return { column, value };
}

// ------------------------------------------------------------ conditions

export const eq = (column: string, value: Value): Condition => ({ column, op: { tag: "eq", val: value } });
export const ne = (column: string, value: Value): Condition => ({ column, op: { tag: "ne", val: value } });
export const lt = (column: string, value: Value): Condition => ({ column, op: { tag: "lt", val: value } });
export const le = (column: string, value: Value): Condition => ({ column, op: { tag: "le", val: value } });
export const gt = (column: string, value: Value): Condition => ({ column, op: { tag: "gt", val: value } });
export const ge = (column: string, value: Value): Condition => ({ column, op: { tag: "ge", val: value } });
export const isIn = (column: string, values: Value[]): Condition => ({ column, op: { tag: "in", val: values } });
export const isNull = (column: string): Condition => ({ column, op: { tag: "is-null" } });
export const isNotNull = (column: string): Condition => ({ column, op: { tag: "is-not-null" } });
export const asc = (column: string): OrderBy => ({ column, descending: false });
export const desc = (column: string): OrderBy => ({ column, descending: true });

// ---------------------------------------------------------------- errors

/** Why a capability call failed: the transaction stays usable. */
export type CapabilityErrorKind =
  | "conflict"
  | "not-found"
  | "forbidden"
  | "invalid"
  | "lock-timeout"
  | "limit-exceeded";

/** A capability call the host refused (a conflict, an invalid value, ...).
 * Uncaught, it becomes the executor's error answer, like any refusal. */
export class CapabilityError extends Error {
  readonly kind: CapabilityErrorKind;
  readonly detail: string;
  /** The violated constraint, for a conflict. */
  readonly constraint?: string;

  constructor(error: wit.Error) {
    const detail = error.tag === "conflict" ? error.val.message : error.val;
    super(`${error.tag}: ${detail}`);
    this.name = "CapabilityError";
    this.kind = error.tag;
    this.detail = detail;
    if (error.tag === "conflict") this.constraint = error.val.constraint;
  }

  /** A conflict on this constraint: the case executors usually answer kindly. */
  isConflictOn(constraint: string): boolean {
    return this.kind === "conflict" && this.constraint === constraint;
  }

  body(): Json {
    const code = this.kind.replaceAll("-", "_");
    return this.constraint === undefined
      ? { error: code, message: this.detail }
      : { error: code, message: this.detail, constraint: this.constraint };
  }
}

/** The executor's own refusal: `{"error": code, "message", ...extra}` is the
 * answer, and everything is rolled back. */
export class Refusal extends Error {
  readonly code: string;
  readonly extra: Record<string, Json>;

  constructor(code: string, message: string, extra: Record<string, Json> = {}) {
    super(message);
    this.name = "Refusal";
    this.code = code;
    this.extra = extra;
  }

  body(): Json {
    return { error: this.code, message: this.message, ...this.extra };
  }
}

/** Refuse: throw the error answer `code`. */
export function refuse(code: string, message: string, extra: Record<string, Json> = {}): never {
  throw new Refusal(code, message, extra);
}

/** The caller sent something the input schema does not allow. */
export function invalidInput(message: string): never {
  refuse("invalid_input", message);
}

/** Call an import; its error (a `{tag, val}` payload) as a CapabilityError.
 * A doomed attempt is a trap instead, which no code can catch. */
function call<T>(body: () => T): T {
  try {
    return body();
  } catch (error) {
    const payload = (error as { payload?: wit.Error }).payload;
    if (payload && typeof payload === "object" && "tag" in payload) {
      throw new CapabilityError(payload);
    }
    throw error;
  }
}

// ---------------------------------------------------------- capabilities

export interface QueryOptions {
  order?: OrderBy[];
  limit?: number;
}

/** The invocation's one transaction, owned by the host: every call is scoped
 * to the invoking tenant, audited, and committed only if `execute` succeeds. */
export const db = {
  /** Serialize with every invocation of this tenant that locks `key`. */
  lock(key: string): void {
    call(() => transaction.lock(key));
  },

  /** Rows of `table` matching every condition. */
  query(table: string, conditions: Condition[] = [], options: QueryOptions = {}): Row[] {
    return call(() => transaction.query(table, conditions, options.order ?? [], options.limit));
  },

  /** Insert one row; returns it as stored (with its id and creation time). */
  insert(table: string, values: Field[] | Record<string, Value>): Row {
    return call(() => transaction.insert(table, fields(values)));
  },

  /** Set `changes` on the matching rows; returns how many changed. */
  update(table: string, conditions: Condition[], changes: Field[] | Record<string, Value>): number {
    return Number(call(() => transaction.update(table, conditions, fields(changes))));
  },

  /** Delete the matching rows (conditions required); returns how many. */
  delete(table: string, conditions: Condition[]): number {
    return Number(call(() => transaction.delete(table, conditions)));
  },
};

function fields(values: Field[] | Record<string, Value>): Field[] {
  return Array.isArray(values) ? values : Object.entries(values).map(([column, value]) => ({ column, value }));
}

// ------------------------------------------------------------ availability

export type Slot = witSlots.Slot;
export type SlotRefusal = witSlots.Refusal;

/** What `slots.check` asks besides the service and the start. */
export interface Ask {
  resourceId?: string;
  holdId?: string;
  movingBookingId?: string;
}

/** The host's availability, computed inside this invocation's transaction:
 * a start checked here and then booked is one serializable decision. */
export const slots = {
  /** The slot at `start`, or why it cannot be booked. */
  check(serviceId: string, start: bigint, ask: Ask = {}): { ok: true; slot: Slot } | { ok: false; refusal: SlotRefusal } {
    const verdict = call(() => availability.check({ serviceId, startsAt: start, ...ask }));
    return verdict.tag === "ok" ? { ok: true, slot: verdict.val } : { ok: false, refusal: verdict.val };
  },

  /** The bookable slots starting in `[from, to)`, earliest first. */
  free(serviceId: string, from: bigint, to: bigint): Slot[] {
    return call(() => availability.freeSlots(serviceId, from, to));
  },

  /** A refusal's kind as errors name it (`outside-hours` -> `outside_hours`). */
  code(refusal: SlotRefusal): string {
    return refusal.kind.replaceAll("-", "_");
  },

  /** Refuse with a refusal as the caller's error: a taken slot is
   * `slot_taken`, held seats `slot_held`, the rest their own code. */
  refuse(refusal: SlotRefusal): never {
    const code = slots.code(refusal);
    const kind = code === "overlaps" || code === "full" ? "slot_taken" : code === "held" ? "slot_held" : code;
    refuse(kind, refusal.message);
  },

  /** A slot as JSON, times in RFC 3339. */
  toJson(slot: Slot): Json {
    return {
      starts_at: time.format(slot.startsAt),
      ends_at: time.format(slot.endsAt),
      seats_left: slot.seatsLeft,
      resources: slot.resources,
    };
  },
};

// ------------------------------------------------------------------ rows

/** The value of `column` in `row`. */
export function get(row: Row, column: string): Value | undefined {
  return row.find((f) => f.column === column)?.value;
}

function unexpected(column: string, expected: string, got: Value | undefined): never {
  refuse("unexpected_row", `column ${JSON.stringify(column)} should be ${expected}, but is ${got ? got.tag : "missing"}`);
}

/** Typed reads of a row's columns (a mismatch is `unexpected_row`). */
export const read = {
  text(row: Row, column: string): string {
    const v = get(row, column);
    return v?.tag === "text" ? v.val : unexpected(column, "text", v);
  },
  uuid(row: Row, column: string): string {
    const v = get(row, column);
    return v?.tag === "uuid" ? v.val : unexpected(column, "uuid", v);
  },
  boolean(row: Row, column: string): boolean {
    const v = get(row, column);
    return v?.tag === "boolean" ? v.val : unexpected(column, "boolean", v);
  },
  integer(row: Row, column: string): number {
    const v = get(row, column);
    return v?.tag === "integer" ? Number(v.val) : unexpected(column, "integer", v);
  },
  /** Microseconds since the epoch (UTC). */
  timestamp(row: Row, column: string): bigint {
    const v = get(row, column);
    return v?.tag === "timestamp" ? v.val : unexpected(column, "timestamp", v);
  },
  json(row: Row, column: string): Json {
    const v = get(row, column);
    return v?.tag === "json" ? (JSON.parse(v.val) as Json) : unexpected(column, "json", v);
  },
};

/** A value as callers see it: timestamps as RFC 3339, JSON columns parsed. */
export function valueToJson(value: Value): Json {
  switch (value.tag) {
    case "null":
      return null;
    case "integer":
      return Number(value.val);
    case "timestamp":
      return time.format(value.val);
    case "json":
      try {
        return JSON.parse(value.val) as Json;
      } catch {
        return value.val;
      }
    default:
      return value.val;
  }
}

/** The row (or just `columns`, in that order) as a JSON object. */
export function toJson(row: Row, columns?: string[]): { [key: string]: Json } {
  const out: { [key: string]: Json } = {};
  for (const column of columns ?? row.map((f) => f.column)) {
    const v = get(row, column);
    if (v === undefined) unexpected(column, "present", v);
    out[column] = valueToJson(v);
  }
  return out;
}

// ------------------------------------------------------------------ time

const MICROS_PER_SECOND = 1_000_000n;

/** Time as the host sees it: microseconds since the epoch (UTC), bigint. */
export const time = {
  MICROS_PER_SECOND,
  MICROS_PER_MINUTE: 60n * MICROS_PER_SECOND,
  MICROS_PER_HOUR: 3600n * MICROS_PER_SECOND,
  MICROS_PER_DAY: 86_400n * MICROS_PER_SECOND,

  /** The invocation's clock: the same in every attempt, so replays agree. */
  now(): bigint {
    return context.now();
  },

  /** RFC 3339 with any offset; throws `invalid_input` otherwise. */
  parse(value: string): bigint {
    const match = /^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.exec(value);
    const millis = match ? Date.parse(`${match[1]}T${match[2]}${match[4].toUpperCase()}`) : NaN;
    if (!match || Number.isNaN(millis)) {
      invalidInput(`${JSON.stringify(value)} is not an RFC 3339 timestamp`);
    }
    const fraction = (match[3] ?? ".").slice(1).padEnd(6, "0").slice(0, 6);
    return BigInt(millis) * 1000n + BigInt(fraction);
  },

  /** UTC with a `Z`; fractional seconds only when there are some. */
  format(micros: bigint): string {
    const seconds = micros / MICROS_PER_SECOND - (micros % MICROS_PER_SECOND < 0n ? 1n : 0n);
    const rest = micros - seconds * MICROS_PER_SECOND;
    const base = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
    if (rest === 0n) return `${base}Z`;
    const digits = rest.toString().padStart(6, "0");
    return `${base}.${digits.endsWith("000") ? digits.slice(0, 3) : digits}Z`;
  },

  /** The UTC calendar day, `YYYY-MM-DD`. */
  utcDate(micros: bigint): string {
    return time.format(micros).slice(0, 10);
  },
};

// ------------------------------------------------------------------- log

export type LogLevel = "debug" | "info" | "warn" | "error";

/** A line in the invocation's log (kept by the host, per attempt). */
export function log(level: LogLevel, message: string): void {
  context.log(level, message);
}

// -------------------------------------------------------------- executor

export interface ExecutorDefinition<Input> {
  /** 1 to 64 of a-z, 0-9 and '-', starting with a letter. */
  name: string;
  /** What it does, written for the agent that will call it. */
  description: string;
  /** JSON Schema of the input; the host checks it before the executor runs. */
  inputSchema: object;
  /** `lock`, `query:<table>`, `insert:<table>`, `update:<table>`, `delete:<table>`. */
  capabilities: string[];
  /** The action: its JSON result commits; a `Refusal` (or an uncaught
   * `CapabilityError`) is the error answer and rolls back; anything else
   * thrown is a trap (its message goes to the log) and rolls back. */
  execute(input: Input): Json | void | Promise<Json | void>;
}

/** The module's `describe` and `execute` exports for `definition`. */
export function executor<Input = { [key: string]: Json }>(definition: ExecutorDefinition<Input>) {
  return {
    describe(): Manifest {
      return {
        name: definition.name,
        description: definition.description,
        inputSchema: JSON.stringify(definition.inputSchema),
        capabilities: definition.capabilities,
      };
    },

    // An err result is a thrown string; ComponentizeJS awaits the promise.
    async execute(input: string): Promise<string> {
      let parsed: Input;
      try {
        parsed = JSON.parse(input) as Input;
      } catch {
        throw JSON.stringify(new Refusal("invalid_input", "the input is not JSON").body());
      }
      try {
        const output = await definition.execute(parsed);
        return JSON.stringify(output ?? null);
      } catch (error) {
        if (error instanceof Refusal || error instanceof CapabilityError) {
          throw JSON.stringify(error.body());
        }
        const message = error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ""}` : String(error);
        log("error", `execute threw ${message.trimEnd()}`);
        throw error;
      }
    },
  };
}

// The first test: runs the built executor (`bookhost build` first) on a
// scratch database with the example data, through `bookhost invoke --local`.
// Run it with `npm test`. Set BOOKHOST to the bookhost binary if it is not
// on your PATH.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";

const bookhost = process.env.BOOKHOST ?? "bookhost";
// The example data's 30-minute Haircut, booked 2030-01-07 10:00-10:30.
const HAIRCUT = "5e7c0000-0000-4000-8000-000000000001";

function invoke(input) {
  const run = spawnSync(bookhost, ["invoke", "--local", "--input", JSON.stringify(input)], { encoding: "utf8" });
  if (run.error) throw run.error;
  assert.notEqual(run.stdout, "", run.stderr);
  return { status: run.status, report: JSON.parse(run.stdout) };
}

test("books a free slot", () => {
  const { status, report } = invoke({ service_id: HAIRCUT, customer: "Ada", start: "2030-01-07T11:00:00Z" });
  assert.equal(report.outcome, "ok", JSON.stringify(report));
  assert.equal(status, 0);
  assert.equal(report.output.booking.ends_at, "2030-01-07T11:30:00Z");
});

test("refuses a taken slot, writing nothing", () => {
  const { status, report } = invoke({ service_id: HAIRCUT, customer: "Ada", start: "2030-01-07T10:15:00Z" });
  assert.equal(report.outcome, "user_error", JSON.stringify(report));
  assert.equal(report.body.error, "slot_taken");
  assert.equal(status, 2);
});

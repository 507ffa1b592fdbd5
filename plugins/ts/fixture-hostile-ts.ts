// fixture-hostile-ts: a test fixture in TypeScript that misbehaves on
// request (throws, spins, allocates without end, writes then throws) so the
// tests can check each is stopped with a typed outcome and nothing written.

import { db, executor, integer, text, type Json } from "@bookhost/sdk";

const MODES = ["throw", "spin", "memory-bomb", "write-then-throw"] as const;

export const { describe, execute } = executor<{ mode: (typeof MODES)[number] }>({
  name: "fixture-hostile-ts",
  description:
    'TEST FIXTURE, hostile on purpose: do not call it for real work. "throw" throws an Error; ' +
    '"spin" loops forever; "memory-bomb" allocates 1 MiB blocks until it is stopped; ' +
    '"write-then-throw" inserts a service named "hostile" and then throws.',
  inputSchema: {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "fixture-hostile-ts input",
    type: "object",
    properties: { mode: { enum: MODES, description: "How to misbehave." } },
    required: ["mode"],
    additionalProperties: false,
  },
  capabilities: ["insert:services"],

  execute({ mode }): Json {
    switch (mode) {
      case "throw":
        throw new Error("fixture-hostile-ts threw on purpose");
      case "spin": {
        let i = 0;
        for (;;) i = (i + 1) | 0;
      }
      case "memory-bomb": {
        const blocks: Uint8Array[] = [];
        for (;;) blocks.push(new Uint8Array(1 << 20).fill(0xa5));
      }
      case "write-then-throw":
        db.insert("services", { name: text("hostile"), duration_minutes: integer(30) });
        throw new TypeError("fixture-hostile-ts threw after writing");
    }
  },
});

// The official TypeScript MCP SDK (@modelcontextprotocol/sdk) against
// bookhost's /mcp: the scenario of tests/integration/mcp_clients.rs,
// printed as one JSON object.
//
// Usage: node client.mjs URL KEY SERVICE_ID START START_2 START_3
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, key, service, start, start2, start3] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${key}` } },
});
const client = new Client({ name: "bookhost-test", version: "1.0.0" });
await client.connect(transport);

const out = { protocol_version: transport.protocolVersion ?? null };
const { tools } = await client.listTools();
out.tools = Object.fromEntries(tools.map((t) => [t.name, t.annotations ?? null]));

const booking = { service_id: service, customer: "Ada (typescript)", start };
const first = await client.callTool({ name: "create-booking", arguments: booking });
out.first = { is_error: first.isError ?? false, customer: first.structuredContent?.booking?.customer ?? null };
const again = await client.callTool({ name: "create-booking", arguments: booking });
out.again = {
  is_error: again.isError ?? false,
  error: again.structuredContent?.error ?? null,
  suggested: (again.structuredContent?.suggested_starts ?? []).length,
};

try {
  await client.callTool({ name: "create-booking", arguments: { service_id: service } });
  out.invalid = { raised: false };
} catch (error) {
  out.invalid = { raised: true, code: error.code ?? null };
}

const keyed = { service_id: service, customer: "Ada (typescript, keyed)", start: start2 };
const meta = { "io.bookhost/idempotency-key": "typescript-retry" };
const one = await client.callTool({ name: "create-booking", arguments: keyed, _meta: meta });
const two = await client.callTool({ name: "create-booking", arguments: keyed, _meta: meta });
out.retry = {
  same: JSON.stringify(one.structuredContent) === JSON.stringify(two.structuredContent),
  is_error: two.isError ?? false,
  replayed: two._meta?.["io.bookhost/replayed"] ?? null,
};

const proposed = await client.callTool({
  name: "create-booking",
  arguments: { service_id: service, customer: "Ada (typescript, proposed)", start: start3 },
  _meta: { "io.bookhost/propose": true },
});
const proposal = proposed.structuredContent?.proposal?.id ?? null;
const confirmed = await client.callTool({ name: "confirm_proposal", arguments: { proposal_id: proposal } });
out.proposal = { proposed: proposal !== null, confirmed_error: confirmed.isError ?? false };

await client.close();
console.log(JSON.stringify(out));

"""The official Python MCP SDK (mcp 2.x) against bookhost's /mcp: the
scenario of tests/integration/mcp_clients.rs, printed as one JSON object.

Usage: client.py URL KEY SERVICE_ID START START_2 START_3
"""

import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError


def annotations(tool):
    a = tool.annotations
    return None if a is None else {
        "readOnlyHint": a.read_only_hint,
        "destructiveHint": a.destructive_hint,
        "idempotentHint": a.idempotent_hint,
        "openWorldHint": a.open_world_hint,
    }


async def main(url, key, service, start, start_2, start_3):
    out = {}
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"},
                              timeout=httpx2.Timeout(30.0, read=120.0))
    async with http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            out["protocol_version"] = str(getattr(client, "protocol_version", "") or "")
            tools = (await client.list_tools()).tools
            out["tools"] = {t.name: annotations(t) for t in tools}

            booking = {"service_id": service, "customer": "Ada (python)", "start": start}
            first = await client.call_tool("create-booking", booking)
            out["first"] = {"is_error": first.is_error,
                            "customer": (first.structured_content or {}).get("booking", {}).get("customer")}
            again = await client.call_tool("create-booking", booking)
            content = again.structured_content or {}
            out["again"] = {"is_error": again.is_error, "error": content.get("error"),
                            "suggested": len(content.get("suggested_starts", []))}

            try:
                await client.call_tool("create-booking", {"service_id": service})
                out["invalid"] = {"raised": False}
            except MCPError as error:
                out["invalid"] = {"raised": True, "code": error.code}

            keyed = {"service_id": service, "customer": "Ada (python, keyed)", "start": start_2}
            meta = {"io.bookhost/idempotency-key": "python-retry"}
            one = await client.call_tool("create-booking", keyed, meta=meta)
            two = await client.call_tool("create-booking", keyed, meta=meta)
            out["retry"] = {"same": one.structured_content == two.structured_content,
                            "is_error": two.is_error,
                            "replayed": (two.meta or {}).get("io.bookhost/replayed")}

            proposed = await client.call_tool(
                "create-booking",
                {"service_id": service, "customer": "Ada (python, proposed)", "start": start_3},
                meta={"io.bookhost/propose": True})
            proposal = (proposed.structured_content or {}).get("proposal", {}).get("id")
            confirmed = await client.call_tool("confirm_proposal", {"proposal_id": proposal})
            out["proposal"] = {"proposed": proposal is not None, "confirmed_error": confirmed.is_error}
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))

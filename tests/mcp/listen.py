"""The official Python MCP SDK listening for tool list changes on bookhost's
/mcp (`subscriptions/listen`, 2026-07-28): prints `listening` once the
server acknowledged, then, at the first change event, the event and the
tool names listed right after it, as one JSON object.

Usage: listen.py URL KEY
"""

import asyncio
import json
import sys

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def main(url, key):
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"},
                              timeout=httpx2.Timeout(30.0, read=120.0))
    async with http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            async with client.listen(tools_list_changed=True) as subscription:
                print("listening", flush=True)
                # Bounded, so a missing notification fails the test, not hangs it.
                with anyio.fail_after(60):
                    event = await anext(aiter(subscription))
            tools = sorted(t.name for t in (await client.list_tools(cache_mode="refresh")).tools)
            print(json.dumps({"event": type(event).__name__, "tools": tools}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:3]))

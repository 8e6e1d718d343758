"""The outbound baseline: sign and POST one body to N inboxes with a bare
aiohttp client (concurrency 64, 8 connections per host, as the hub), no
database and no job queue. ``python -m bench.ceiling BASE_PORT SERVERS ACTORS``;
prints the deliveries per second as JSON. Run pinned to the server's core."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp

from hub import crypto
from hub.federation import httpsig


async def run(base_port: int, servers: int, actors: int) -> dict:
    private_pem, _ = crypto.generate_rsa_pem()
    key = crypto.load_private_pem(private_pem)
    body = json.dumps({"id": "urn:bench:ceiling", "type": "Create", "content": "x" * 1200}).encode()
    digest = httpsig.digest_header(body)
    urls = [f"http://localhost:{base_port + i}/users/d{n}/inbox" for n in range(actors) for i in range(servers)]
    connector = aiohttp.TCPConnector(limit=128, limit_per_host=8)
    async with aiohttp.ClientSession(connector=connector) as session:
        sem = asyncio.Semaphore(64)

        async def one(url: str) -> None:
            async with sem:
                headers = {"Content-Type": "application/activity+json"}
                headers.update(httpsig.sign_cavage(method="POST", url=url, body=body, key_id="urn:bench#k",
                                                   private_key=key, digest=digest))
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()

        await asyncio.gather(*(one(u) for u in urls))  # warm-up: connections
        start = time.perf_counter()
        await asyncio.gather(*(one(u) for u in urls))
        elapsed = time.perf_counter() - start
    return {"deliveries": len(urls), "deliveries_per_s": round(len(urls) / elapsed)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(*(int(a) for a in sys.argv[1:4])))))

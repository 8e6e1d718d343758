"""Processes the benchmark runs beside the hub (``python -m bench.peers MODE ...``).

* ``bare PORT``: the bare aiohttp baseline, a handler that answers 202.
* ``inbox PORT PEM_FILE``: the no-database inbox baseline: digest check,
  JSON parse and RSA verify of the cavage signature, then 202.
* ``actor PORT PEM_FILE``: serves the load generator's actor document, so
  the hub can fetch the signing key once.
* ``receivers BASE_PORT SERVERS ACTORS CONTROL_PORT``: SERVERS aiohttp
  servers (ports BASE_PORT...), each with ACTORS actors with a shared inbox
  (``/users/s<n>``) and ACTORS without (``/users/d<n>``), answering 202 to
  deliveries and counting them; ``CONTROL_PORT`` serves the counts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import time

from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding


def bare_app() -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    app.router.add_get("/{tail:.*}", handle)
    return app


def inbox_app(pem: str) -> web.Application:
    """What an inbox must do at the least, with no database: the baseline."""
    key = serialization.load_pem_public_key(pem.encode())

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
        if request.headers.get("Digest") != digest:
            return web.Response(status=401)
        json.loads(body)
        params = dict(
            part.split("=", 1) for part in request.headers["Signature"].split(",")
        )
        names = params["headers"].strip('"').split()
        lines = []
        for name in names:
            if name == "(request-target)":
                lines.append(f"(request-target): post {request.path_qs}")
            else:
                lines.append(f"{name}: {request.headers[name]}")
        key.verify(base64.b64decode(params["signature"].strip('"')), "\n".join(lines).encode(),
                   padding.PKCS1v15(), hashes.SHA256())
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    return app


def actor_doc(base: str, name: str, pem: str, *, shared: bool) -> dict:
    uri = f"{base}/users/{name}"
    doc = {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": uri, "type": "Person", "preferredUsername": name, "inbox": f"{uri}/inbox",
        "outbox": f"{uri}/outbox", "followers": f"{uri}/followers",
        "publicKey": {"id": f"{uri}#main-key", "owner": uri, "publicKeyPem": pem},
    }
    if shared:
        doc["endpoints"] = {"sharedInbox": f"{base}/inbox"}
    return doc


def actor_app(port: int, pem: str) -> web.Application:
    doc = actor_doc(f"http://localhost:{port}", "loader", pem, shared=True)

    async def handle(request: web.Request) -> web.Response:
        if request.path == "/users/loader":
            return web.json_response(doc, content_type="application/activity+json")
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app


class Counter:
    def __init__(self) -> None:
        self.by_activity: dict[str, int] = {}
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}


def receiver_app(port: int, actors: int, pem: str, counter: Counter) -> web.Application:
    base = f"http://localhost:{port}"
    docs = {}
    for n in range(actors):
        for prefix, shared in (("s", True), ("d", False)):
            docs[f"/users/{prefix}{n}"] = actor_doc(base, f"{prefix}{n}", pem, shared=shared)

    async def get(request: web.Request) -> web.Response:
        doc = docs.get(request.path)
        if doc is None:
            return web.Response(status=404)
        return web.json_response(doc, content_type="application/activity+json")

    async def post(request: web.Request) -> web.Response:
        body = await request.read()
        activity = json.loads(body).get("id", "?")
        now = time.monotonic()
        counter.by_activity[activity] = counter.by_activity.get(activity, 0) + 1
        counter.first.setdefault(activity, now)
        counter.last[activity] = now
        return web.Response(status=202)

    app = web.Application()
    app.router.add_get("/{tail:.*}", get)
    app.router.add_post("/{tail:.*}", post)
    return app


def control_app(counter: Counter) -> web.Application:
    async def stats(request: web.Request) -> web.Response:
        activity = request.query.get("activity")
        if activity:
            return web.json_response({
                "count": counter.by_activity.get(activity, 0),
                "first": counter.first.get(activity), "last": counter.last.get(activity), "now": time.monotonic(),
            })
        return web.json_response({"activities": len(counter.by_activity), "total": sum(counter.by_activity.values())})

    app = web.Application()
    app.router.add_get("/stats", stats)
    return app


async def serve_many(apps: list[tuple[web.Application, int]]) -> None:
    import asyncio

    runners = []
    for app, port in apps:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
        runners.append(runner)
    print("ready", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str]) -> None:
    import asyncio

    mode = argv[0]
    if mode == "bare":
        apps = [(bare_app(), int(argv[1]))]
    elif mode == "inbox":
        apps = [(inbox_app(open(argv[2]).read()), int(argv[1]))]
    elif mode == "actor":
        apps = [(actor_app(int(argv[1]), open(argv[2]).read()), int(argv[1]))]
    elif mode == "receivers":
        base, servers, actors, control = (int(x) for x in argv[1:5])
        pem = open(argv[5]).read()
        counter = Counter()
        apps = [(receiver_app(base + i, actors, pem, counter), base + i) for i in range(servers)]
        apps.append((control_app(counter), control))
    else:
        raise SystemExit(f"unknown mode {mode}")
    asyncio.run(serve_many(apps))


if __name__ == "__main__":
    main(sys.argv[1:])

"""Test helpers: configuration, fixture loading, a shape-faithful signer, and
``FakeRemote``, a stand-in fediverse server on a real loopback socket.

``FakeRemote`` exists because Mastodon, GoToSocial, Misskey, Akkoma and Fedify
cannot run offline here: it serves actor documents in their documented
shapes (``tests/fixtures/actors``), signs requests the way each of them does
(``tests/fixtures/signature_shapes.json``) and records what reaches its
inboxes. Real Roundtable-to-Roundtable federation is tested in ``tests/e2e``
with real processes.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import json
import socket
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from hub.config import Config, load_config

FIXTURES = Path(__file__).parent / "fixtures"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_config(tmp_path: Path, *, port: int | None = None, **overrides: Any) -> Config:
    port = port or free_port()
    values = {
        "dev": True,
        "domain": f"localhost:{port}",
        "listen": f"127.0.0.1:{port}",
        "data": tmp_path / f"hub-{port}",
        "retry_schedule_s": (0.2, 0.4, 0.8),
        "retry_jitter": 0.0,
        "job_poll_s": 0.05,
        "workers": False,
        "http_timeout_s": 5.0,
    }
    values.update(overrides)
    return load_config(env={}, **values)


def load_fixture(name: str, **values: str) -> Any:
    """A fixture with ``{placeholders}`` filled in (string replacement, JSON-safe)."""
    text = (FIXTURES / name).read_text()
    for key, value in values.items():
        text = text.replace("{" + key + "}", json.dumps(value)[1:-1])
    return json.loads(text)


# --- keys and an independent, shape-faithful signer -----------------------------------------


class KeyPair:
    def __init__(self, kind: str = "rsa"):
        if kind == "ed25519":
            self.private = ed25519.Ed25519PrivateKey.generate()
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kind = kind

    @property
    def public_pem(self) -> str:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    @property
    def public_pem_pkcs1(self) -> str:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
        ).decode()

    @property
    def private_pem(self) -> str:
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    @property
    def multibase(self) -> str:
        raw = b"\xed\x01" + self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
        num = int.from_bytes(raw, "big")
        out = ""
        while num:
            num, rem = divmod(num, 58)
            out = alphabet[rem] + out
        return "z" + out

    def sign(self, data: bytes) -> bytes:
        if self.kind == "ed25519":
            return self.private.sign(data)
        return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())


def sign_like(
    shape: dict,
    key: KeyPair,
    *,
    url: str,
    body: bytes | None,
    key_id: str,
    date: str | None = None,
    created: int | None = None,
) -> dict[str, str]:
    """Sign a request exactly the way ``shape`` (signature_shapes.json) describes.

    Written independently of ``hub.federation.httpsig`` so the tests check
    our verifier against the shapes, not against itself.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.netloc
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    method = shape["method"]
    date = date or email.utils.formatdate(usegmt=True)
    headers: dict[str, str] = {"Host": host, "Date": date}
    if body is not None:
        headers["Digest"] = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
        headers["Content-Length"] = str(len(body))
        if shape.get("content_type"):
            headers["Content-Type"] = shape["content_type"]
    if shape.get("accept"):
        headers["Accept"] = shape["accept"]
    if shape["scheme"] == "cavage":
        lines = []
        for name in shape["headers"]:
            if name == "(request-target)":
                target = parts.path if shape.get("sign_path_only") else path
                lines.append(f"(request-target): {method.lower()} {target}")
            else:
                value = next(v for k, v in headers.items() if k.lower() == name)
                lines.append(f"{name}: {value}")
        sig = base64.b64encode(key.sign("\n".join(lines).encode())).decode()
        params = [f'keyId="{key_id}"']
        if shape.get("algorithm"):
            params.append(f'algorithm="{shape["algorithm"]}"')
        params += [f'headers="{" ".join(shape["headers"])}"', f'signature="{sig}"']
        headers["Signature"] = ",".join(params)
        return headers
    # RFC 9421
    if body is not None:
        headers["Content-Digest"] = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
    created = created if created is not None else int(time.time())
    values = {
        "@method": method,
        "@target-uri": url,
        "@authority": host,
        "host": host,
        "date": date,
        "content-digest": headers.get("Content-Digest", ""),
    }
    comps = shape["components"]
    param_text = {"alg": ';alg="rsa-v1_5-sha256"' if key.kind == "rsa" else ';alg="ed25519"',
                  "keyid": f';keyid="{key_id}"', "created": f";created={created}"}
    params = "".join(param_text[p] for p in shape["params"])
    inner = "(" + " ".join(f'"{c}"' for c in comps) + ")"
    base = "\n".join([*(f'"{c}": {values[c]}' for c in comps), f'"@signature-params": {inner}{params}'])
    headers["Signature-Input"] = f"sig1={inner}{params}"
    headers["Signature"] = "sig1=:" + base64.b64encode(key.sign(base.encode())).decode() + ":"
    return headers


SHAPES = {k: v for k, v in json.loads((FIXTURES / "signature_shapes.json").read_text()).items() if not k.startswith("_")}


# --- a fake remote server --------------------------------------------------------------------


class RemoteActor:
    def __init__(self, remote: FakeRemote, username: str, style: str):
        self.remote = remote
        self.username = username
        self.style = style
        self.key = KeyPair()
        self.key2 = KeyPair()
        self.ed_key = KeyPair("ed25519")

    @property
    def doc(self) -> dict:
        base = self.remote.base
        return load_fixture(
            f"actors/{self.style}.json",
            base=base, username=self.username, host=self.remote.host, pem=self.key.public_pem,
            pem2=self.key2.public_pem, pem_pkcs1=self.key.public_pem_pkcs1, multibase=self.ed_key.multibase,
        )

    @property
    def uri(self) -> str:
        return self.doc["id"]

    @property
    def key_id(self) -> str:
        keys = self.doc["publicKey"]
        return (keys[0] if isinstance(keys, list) else keys)["id"]

    @property
    def inbox(self) -> str:
        return self.doc["inbox"]

    def sign(self, url: str, body: bytes | None, *, shape: str = "mastodon-4.4-post", key: KeyPair | None = None,
             **kw) -> dict[str, str]:
        return sign_like(SHAPES[shape], key or self.key, url=url, body=body, key_id=self.key_id, **kw)


class FakeRemote:
    """A fediverse server stand-in on 127.0.0.1 (see the module docstring)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.host = f"localhost:{self.port}"
        self.base = f"http://{self.host}"
        self.actors: dict[str, RemoteActor] = {}
        self.objects: dict[str, dict] = {}
        self.received: list[dict] = []
        self.requests: list[tuple[str, str]] = []
        self.inbox_status: list[int] | int = 202
        self.inbox_headers: dict[str, str] = {}
        self.gone: set[str] = set()
        self.reject_rfc9421 = False
        self.reject_rfc9421_with = 401
        self.nodeinfo_software: str | None = None
        self.inbox_delay_s = 0.0
        self.inbox_body = b""
        self.get_status: int | None = None  # answer every GET with this status
        self._runner: web.AppRunner | None = None
        self.event = asyncio.Event()

    def add_actor(self, username: str, style: str = "mastodon") -> RemoteActor:
        actor = RemoteActor(self, username, style)
        self.actors[username] = actor
        return actor

    def actor_by_path(self, path: str) -> RemoteActor | None:
        for a in self.actors.values():
            if a.uri.endswith(path):
                return a
        return None

    async def start(self) -> FakeRemote:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _next_inbox_status(self) -> int:
        if isinstance(self.inbox_status, list):
            return self.inbox_status.pop(0) if len(self.inbox_status) > 1 else self.inbox_status[0]
        return self.inbox_status

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests.append((request.method, path))
        url = f"{self.base}{request.path_qs}"
        if url in self.gone:
            return web.json_response({"error": "gone"}, status=410)
        if request.method == "GET" and self.get_status is not None:
            return web.json_response({"error": "unavailable"}, status=self.get_status)
        if request.method == "POST":
            body = await request.read()
            if self.inbox_delay_s:
                await asyncio.sleep(self.inbox_delay_s)
            if self.reject_rfc9421 and "Signature-Input" in request.headers:
                return web.json_response({"error": "unsupported signature"}, status=self.reject_rfc9421_with)
            status = self._next_inbox_status()
            self.received.append({"path": path, "headers": dict(request.headers), "body": body, "status": status,
                                  "json": json.loads(body) if body else None})
            self.event.set()
            return web.Response(status=status, headers=self.inbox_headers, body=self.inbox_body)
        if path == "/.well-known/webfinger":
            resource = request.query.get("resource", "")
            user = resource.removeprefix("acct:").split("@")[0]
            actor = self.actors.get(user)
            if actor is None:
                return web.json_response({"error": "not found"}, status=404)
            return web.json_response({
                "subject": f"acct:{user}@{self.host}",
                "links": [{"rel": "self", "type": "application/activity+json", "href": actor.uri}],
            }, content_type="application/jrd+json")
        if path == "/.well-known/nodeinfo":
            if not self.nodeinfo_software:
                return web.Response(status=404)
            return web.json_response({"links": [{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                                                 "href": f"{self.base}/nodeinfo/2.1"}]})
        if path == "/nodeinfo/2.1":
            return web.json_response({"version": "2.1", "software": {"name": self.nodeinfo_software, "version": "4.5.0"}})
        if url in self.objects:
            return web.json_response(self.objects[url], content_type="application/activity+json")
        for actor in self.actors.values():
            if url == actor.uri:
                return web.json_response(actor.doc, content_type="application/activity+json")
            if actor.style == "gotosocial" and url == actor.key_id:
                stub = load_fixture("actors/gotosocial_key_stub.json", base=self.base, username=actor.username, pem=actor.key.public_pem)
                return web.json_response(stub, content_type="application/activity+json")
        return web.json_response({"error": "not found"}, status=404)

    async def wait_for(self, predicate, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [r for r in self.received if predicate(r)]
            if found:
                return found
            self.event.clear()
            try:
                await asyncio.wait_for(self.event.wait(), timeout=0.1)
            except asyncio.TimeoutError:
                pass
        raise AssertionError("expected request did not arrive")


async def post_signed(session, url: str, doc: Any, actor: RemoteActor, *, shape: str = "mastodon-4.4-post",
                      body: bytes | None = None, headers: dict | None = None, **kw):
    body = body if body is not None else json.dumps(doc).encode()
    hdrs = actor.sign(url, body, shape=shape, **kw)
    hdrs.pop("Host", None)
    hdrs.pop("Content-Length", None)
    hdrs.setdefault("Content-Type", "application/activity+json")
    hdrs.update(headers or {})
    async with session.post(url, data=body, headers=hdrs) as resp:
        return resp.status, await resp.text()


class ThreadedRemote:
    """A FakeRemote running on its own event loop in a thread, for sync tests
    that drive real hub processes."""

    def __init__(self) -> None:
        import threading

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.remote: FakeRemote = self.call(FakeRemote().start())

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def close(self) -> None:
        self.call(self.remote.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)

    def post(self, url: str, doc: Any, actor: RemoteActor, **kw) -> tuple[int, str]:
        async def _post():
            import aiohttp

            async with aiohttp.ClientSession() as session:
                return await post_signed(session, url, doc, actor, **kw)

        return self.call(_post())

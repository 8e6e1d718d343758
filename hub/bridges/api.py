"""The bridge API: bridges run by operators outside the hub, and webhook channels.

Like a Matrix application service, a bridge registered on a hub
(``roundtable bridge add NAME --kind external``) gets a token and a secret.
Its process (``roundtable bridge run NAME``) runs the connector at the
network's edge and speaks to the hub over HTTP:

* ``POST /api/roundtable/v1/bridge/items`` (bearer token): one inbound item,
  already read by the connector: ``{"raw_b64", "sender", "recipients",
  "envelope"}`` or ``{..., "rejected"}``. The hub stores the raw item and
  queues it before answering ``202 {"item": ID}``; only then may the bridge
  tell its network the item was accepted. The envelope's network is always
  the bridge's own name: a bridge speaks only for its namespace of bridged
  people (``NAME__...``), never for another bridge's or for local accounts.
* ``POST /api/roundtable/v1/bridge/state`` (bearer token): its connection
  state ``{"state": "connected|disconnected|bad_credentials|error|stopped",
  "detail": "..."}``, and optionally ``"url"``, where it takes sends.
* ``GET /api/roundtable/v1/bridge/recipients/{username}`` (bearer token):
  whether a local actor of that name can be written to (for address checks
  at the edge, e.g. SMTP ``RCPT TO``).
* Sends: the hub POSTs each :class:`~hub.bridges.base.Outbound` as JSON to
  ``URL/send``, signed with the secret (``X-Roundtable-Timestamp``,
  ``X-Roundtable-Signature``, see :mod:`hub.bridges.webhook`); the bridge
  answers ``{"remote_id": "..."}``, or an error status (4xx: permanent).

Webhook channels use ``POST /api/roundtable/v1/channels/{name}/inbound``,
signed with the channel's secret (:mod:`hub.bridges.webhook`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import os
import re
import secrets

from aiohttp import web

from hub.bridges import webhook
from hub.bridges.base import Envelope, Outbound, Rejected, SendError, State
from hub.context import Hub
from hub.errors import Conflict, HubError, NotFound, Unauthorized, UsageError
from hub.store import actors as actor_store
from hub.store import bridges as bridge_store

log = logging.getLogger(__name__)
BASE = "/api/roundtable/v1"
HUB_KEY = web.AppKey("bridge_api_hub", Hub)
MAX_ITEM_BYTES = 40 * 1024 * 1024
NAME = re.compile(r"^[a-z][a-z0-9]{1,19}$")
RESERVED = {"activitypub", "unverified"}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _error(status: int, message: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="roundtable-bridge"'} if status == 401 else None
    return web.json_response({"error": message}, status=status, headers=headers)


async def create_bridge(hub: Hub, name: str, *, kind: str, url: str | None, owner: str | None,
                        capabilities: list[str]) -> dict:
    """Register an external bridge or a webhook channel; its token and secret, shown once."""
    from hub.bridges.base import Capabilities

    if not NAME.match(name) or name in RESERVED:
        raise UsageError("a bridge's name is 2-20 lower-case letters and digits, starting with a letter")
    unknown = set(capabilities) - set(Capabilities.__dataclass_fields__)
    if unknown:
        raise UsageError(f"unknown capability {sorted(unknown)[0]!r}")
    if url:
        hub.http.check_url(url)  # no private addresses outside development mode
    if kind == "webhook" and not owner:
        raise UsageError("a webhook channel belongs to an actor: give --owner USERNAME")
    async with hub.db.write() as conn:
        owner_row = None
        if owner:
            owner_row = await actor_store.get_local_actor(conn, owner.lower())
            if owner_row is None or owner_row.type == "Application" or owner_row.bridge_network:
                raise NotFound(f"no local actor named {owner!r}")
        if await bridge_store.get_bridge(conn, name) is not None:
            raise Conflict(f"a bridge named {name!r} exists already")
        if await bridge_store.network_in_use(conn, name):
            raise Conflict(f"the name {name!r} was used by a bridge before: its people keep it; choose another")
        token = "rtb_" + secrets.token_urlsafe(32)
        secret = secrets.token_urlsafe(32)
        caps = {c: True for c in capabilities}
        await bridge_store.put_bridge(conn, {
            "name": name, "kind": kind, "url": url, "secret": secret, "token_hash": _hash(token),
            "owner_actor_id": owner_row.id if owner_row else None,
            "settings": {"capabilities": caps, "owner": owner_row.username if owner_row else None},
        })
    out = {"name": name, "kind": kind, "secret": secret, "url": url}
    if kind == "webhook":
        out["inbound_url"] = f"{hub.cfg.base_url}{BASE}/channels/{name}/inbound"
    else:
        out["token"] = token
    return out


async def channels_of(hub: Hub, acting) -> list[dict]:
    """An actor's webhook channels (admin)."""
    acting.require("admin")
    async with hub.db.read() as conn:
        rows = await bridge_store.list_bridges(conn, owner_actor_id=acting.actor.id)
    return [{"name": r.name, "kind": r.kind, "url": r.url, "state": r.state,
             "capabilities": (r.settings or {}).get("capabilities") or {},
             "inbound_url": f"{hub.cfg.base_url}{BASE}/channels/{r.name}/inbound"} for r in rows if r.kind == "webhook"]


async def remove_channel(hub: Hub, acting, name: str) -> None:
    acting.require("admin")
    async with hub.db.write() as conn:
        row = await bridge_store.get_bridge(conn, name)
        if row is None or row.kind != "webhook" or row.owner_actor_id != acting.actor.id:
            raise NotFound(f"no channel of @{acting.actor.username} named {name!r}")
        await bridge_store.delete_bridge(conn, name)


# --- the hub's side: routes -------------------------------------------------------------------------


async def _bridge_of(request: web.Request, hub: Hub):
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the bridge's bearer token is required")
    async with hub.db.read() as conn:
        bridge = await bridge_store.get_bridge_by_token_hash(conn, _hash(token.strip()))
    if bridge is None:
        raise Unauthorized("invalid bridge token")
    return bridge


async def _read(request: web.Request, limit: int) -> bytes:
    if request.content_length and request.content_length > limit:
        raise HubError(f"request body too large (limit {limit} bytes)", status=413)
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise HubError(f"request body too large (limit {limit} bytes)", status=413)
    return body


def _json(body: bytes) -> dict:
    try:
        data = json.loads(body)
    except ValueError:
        raise UsageError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise UsageError("the body must be a JSON object")
    return data


def _wrap(handler):
    async def wrapped(request: web.Request) -> web.StreamResponse:
        hub = request.app[HUB_KEY]
        try:
            return await handler(request, hub)
        except HubError as exc:
            if exc.status >= 500:
                log.exception("bridge API error on %s", request.path)
            return _error(exc.status, exc.safe)

    return wrapped


async def post_item(request: web.Request, hub: Hub) -> web.Response:
    bridge = await _bridge_of(request, hub)
    data = _json(await _read(request, MAX_ITEM_BYTES))
    try:
        raw = base64.b64decode(data.get("raw_b64") or "", validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise UsageError("'raw_b64' must be base64") from None
    sender = data.get("sender")
    recipients = data.get("recipients") or []
    if sender is not None and not isinstance(sender, str):
        raise UsageError("'sender' must be a string")
    if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
        raise UsageError("'recipients' must be a list of strings")
    envelope = rejected = None
    if isinstance(data.get("envelope"), dict):
        try:
            envelope = Envelope.from_json(data["envelope"])
        except (TypeError, ValueError, KeyError, binascii.Error) as exc:
            raise UsageError(f"'envelope' is malformed: {exc}") from None
        envelope.network = bridge.name  # a bridge speaks for its own namespace only
        if not isinstance(envelope.remote_id, str) or not envelope.remote_id or not envelope.sender.remote_id:
            raise UsageError("'envelope' needs remote_id and sender.remote_id")
        if envelope.sender.remote_id.startswith("unverified:"):
            raise UsageError("that sender id is reserved")
    elif isinstance(data.get("rejected"), dict):
        try:
            rejected = Rejected(**{k: v for k, v in data["rejected"].items() if k in Rejected.__dataclass_fields__})
        except TypeError as exc:
            raise UsageError(f"'rejected' is malformed: {exc}") from None
    else:
        raise UsageError("'envelope' or 'rejected' is required")
    item_id = await hub.bridges.submit(bridge.name, raw, sender=sender, recipients=recipients, envelope=envelope,
                                       rejected=rejected)
    return web.json_response({"item": item_id}, status=202)


async def post_state(request: web.Request, hub: Hub) -> web.Response:
    bridge = await _bridge_of(request, hub)
    data = _json(await _read(request, 16 * 1024))
    try:
        state = State(data.get("state"))
    except ValueError:
        raise UsageError(f"'state' must be one of {', '.join(s.value for s in State)}") from None
    detail = data.get("detail")
    values = {}
    if data.get("url") is not None:
        if not isinstance(data["url"], str):
            raise UsageError("'url' must be a string")
        hub.http.check_url(data["url"])
        values["url"] = data["url"]
    async with hub.db.write() as conn:
        if isinstance(data.get("capabilities"), dict):
            row = await bridge_store.get_bridge(conn, bridge.name, for_update=True)
            settings = dict(row.settings or {})
            settings["capabilities"] = {k: bool(v) for k, v in data["capabilities"].items()}
            values["settings"] = settings
        if values:
            await bridge_store.update_bridge(conn, bridge.name, values)
        await bridge_store.set_bridge_state(conn, bridge.name, state, str(detail)[:500] if detail else None)
    return web.json_response({"name": bridge.name, "state": state.value})


async def get_recipient(request: web.Request, hub: Hub) -> web.Response:
    await _bridge_of(request, hub)
    from hub.bridges.core import accepts_recipient

    return web.json_response({"accepts": await accepts_recipient(hub, request.match_info["username"])})


async def channel_inbound(request: web.Request, hub: Hub) -> web.Response:
    name = request.match_info["name"]
    async with hub.db.read() as conn:
        bridge = await bridge_store.get_bridge(conn, name)
    if bridge is None or bridge.kind != "webhook":
        raise NotFound(f"no channel named {name!r}")
    body = await _read(request, hub.cfg.max_mail_bytes)
    problem = webhook.verify(bridge.secret or "", request.headers, body)
    if problem:
        raise Unauthorized(problem)
    data = _json(body)
    problem = webhook.check_inbound(data)
    if problem:
        raise UsageError(problem)
    owner = (bridge.settings or {}).get("owner")
    item_id = await hub.bridges.submit(name, body, sender=str(data["from"]["id"]), recipients=[owner] if owner else [])
    return web.json_response({"item": item_id}, status=202)


ROUTES = [
    ("POST", "/bridge/items", post_item),
    ("POST", "/bridge/state", post_state),
    ("GET", "/bridge/recipients/{username}", get_recipient),
    ("POST", "/channels/{name}/inbound", channel_inbound),
]


def setup(app: web.Application, hub: Hub) -> None:
    from hub.api import add_routes

    app[HUB_KEY] = hub
    add_routes(app, ROUTES, _wrap)


# --- the bridge's side: `roundtable bridge run` ------------------------------------------------------


class RemoteLink:
    """How a connector in a bridge process reaches its hub: the bridge API."""

    def __init__(self, session, hub_url: str, token: str, connector):
        self.session = session
        self.hub_url = hub_url.rstrip("/")
        self.token = token
        self.connector = connector

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}

    async def _post(self, path: str, payload: dict) -> dict:
        async with self.session.post(self.hub_url + BASE + path, data=json.dumps(payload).encode(),
                                     headers=self._headers()) as resp:
            body = await resp.read()
            if resp.status >= 300:
                raise RuntimeError(f"the hub answered {resp.status}: {body[:200].decode(errors='replace')}")
            return json.loads(body or b"{}")

    async def submit(self, raw: bytes, *, sender: str | None, recipients: list[str]) -> str:
        result = await self.connector.receive(raw, sender=sender, recipients=recipients)
        payload = {"raw_b64": base64.b64encode(raw).decode(), "sender": sender, "recipients": recipients}
        if isinstance(result, Rejected):
            payload["rejected"] = {k: getattr(result, k) for k in Rejected.__dataclass_fields__}
        else:
            payload["envelope"] = result.to_json()
        return (await self._post("/bridge/items", payload))["item"]

    async def report_state(self, state: State, detail: str | None = None) -> None:
        try:
            await self._post("/bridge/state", {"state": state.value, "detail": detail})
        except Exception as exc:  # state reports are best effort
            log.warning("could not report state %s to the hub: %s", state.value, exc)

    async def accepts_recipient(self, username: str) -> bool:
        async with self.session.get(f"{self.hub_url}{BASE}/bridge/recipients/{username}", headers=self._headers()) as resp:
            if resp.status != 200:
                return False
            return bool((await resp.json()).get("accepts"))


async def run_external(cfg, args) -> int:
    """``roundtable bridge run NAME``: the connector here, the hub over HTTP."""
    import aiohttp

    from hub.bridges.email import EmailConnector

    token = args.token or os.environ.get("ROUNDTABLE_BRIDGE_TOKEN", "")
    secret = os.environ.get("ROUNDTABLE_BRIDGE_SECRET", "")
    if not token or not secret:
        raise UsageError("give the bridge's token (--token or ROUNDTABLE_BRIDGE_TOKEN) and its secret "
                         "(ROUNDTABLE_BRIDGE_SECRET), as `roundtable bridge add` printed them")
    if not args.listen:
        raise UsageError("give --listen HOST:PORT, where this bridge takes the hub's sends")
    connector = EmailConnector(cfg, name=args.name)
    host, _, port = args.listen.rpartition(":")
    public_url = os.environ.get("ROUNDTABLE_BRIDGE_URL") or f"http://{host or '127.0.0.1'}:{port}"

    sent: dict[str, str] = {}  # transaction id -> remote id: a send the hub repeats is not sent twice

    async def send(request: web.Request) -> web.Response:
        body = await request.content.read(1024 * 1024 + 1)
        problem = webhook.verify(secret, request.headers, body)
        if problem:
            return _error(401, problem)
        try:
            outbound = Outbound.from_json(_json(body))
        except (HubError, TypeError) as exc:
            return _error(400, f"not a send: {exc}")
        if outbound.txn_id in sent:
            return web.json_response({"remote_id": sent[outbound.txn_id]})
        try:
            remote_id = await connector.send(outbound)
        except SendError as exc:
            status = 422 if exc.permanent else 503
            return _error(status, str(exc))
        if len(sent) > 100_000:
            sent.clear()
        sent[outbound.txn_id] = remote_id
        return web.json_response({"remote_id": remote_id})

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/send", send)
    runner = web.AppRunner(app)
    stop = asyncio.Event()
    import signal

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        link = RemoteLink(session, args.hub, token, connector)
        await runner.setup()
        await web.TCPSite(runner, host or "127.0.0.1", int(port)).start()
        await link._post("/bridge/state", {"state": "connected", "detail": "starting", "url": public_url,
                                           "capabilities": connector.capabilities.as_dict()})
        await connector.start(link)
        print(f"bridge {args.name} ({connector.kind}) running for {args.hub}; sends at {public_url}/send", flush=True)
        try:
            await stop.wait()
        finally:
            await connector.stop()
            await runner.cleanup()
    return 0

"""Inbound activities: verify, bound, dedupe, persist, 202. Nothing else.

Checks run in this order, each answering with a short JSON reason:

1. a body over ``max_inbox_body`` bytes: 413, before anything else;
2. a missing, malformed or invalid signature or digest: 401 (the key is
   fetched if unknown, and fetched again once if the signature does not
   verify: key rotation);
3. a validly signed body that is not JSON, or not an activity: 400;
4. a signer that is neither the activity's actor nor of its origin: 401.

Exception: a ``Delete`` (or ``Update``) whose actor is its object, from an
actor we never knew, is answered 202 and dropped before any key fetch (the
key of a deleted account is gone; Mastodon does the same).

Accepted activities are written by a group committer: concurrent requests
share one transaction, and each request is answered only after the
transaction holding its activity has committed. Replays (same activity id)
are answered 202 and change nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from hub.errors import (
    BadRequest,
    FetchError,
    Forbidden,
    HubError,
    KeyUnavailable,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)
from hub.federation import discovery, httpsig
from hub.federation.documents import host_of, id_of, same_origin, types_of, valid_uri
from hub.ids import new_id
from hub.store import actors as actor_store
from hub.store import jobs as job_store
from hub.store.base import utcnow

if TYPE_CHECKING:
    from hub.federation import Federation

log = logging.getLogger(__name__)


def error_response(status: int, reason: str) -> web.Response:
    headers = {"Vary": "Accept"}
    if status == 503:
        headers["Retry-After"] = "60"
    return web.json_response({"error": reason}, status=status, headers=headers)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, however it arrives (in pieces, chunked), never more than ``limit``."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"body is larger than {limit} bytes")
    buf = bytearray()
    while True:
        chunk = await request.content.read(65536)  # what has arrived; b"" at the end
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > limit:
            raise PayloadTooLarge(f"body is larger than {limit} bytes")


class InboxWriter:
    """Group commit of accepted activities and their ``ap.inbound`` jobs."""

    def __init__(self, fed: Federation):
        self.fed = fed
        self.pending: list[tuple[dict, dict, asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None

    async def submit(self, activity_row: dict, job_payload: dict) -> bool:
        fut = asyncio.get_running_loop().create_future()
        self.pending.append((activity_row, job_payload, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await fut

    async def _flush(self) -> None:
        while self.pending:
            batch, self.pending = self.pending[:1000], self.pending[1000:]
            items = [(a, p) for a, p, _f in batch]
            try:
                now = utcnow()
                stored = await self.fed.hub.db.run_write(
                    lambda conn, items=items, now=now: job_store.put_inbound_batch(conn, items, now=now), inline=True
                )
            except Exception:
                # One bad row must not fail the others: store them one by one;
                # a row that still fails gets its error (a 503, nothing stored).
                log.exception("could not store %d inbound activities together; storing them one by one", len(batch))
                stored = set()
                for a, p, fut in batch:
                    try:
                        stored |= await self.fed.hub.db.run_write(
                            lambda conn, item=(a, p), now=now: job_store.put_inbound_batch(conn, [item], now=now)
                        )
                    except Exception as exc:
                        log.exception("could not store inbound activity %s", a["uri"])
                        if not fut.done():
                            fut.set_exception(exc)
            for a, _p, fut in batch:
                if not fut.done():
                    fut.set_result(a["id"] in stored)
            self.fed.hub.wake()


def _peek_json(body: bytes):
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return None


async def _is_unknown_actor_self_delete(fed: Federation, doc) -> bool:
    if not isinstance(doc, dict) or not types_of(doc) & {"Delete", "Update"}:
        return False
    actor_uri = id_of(doc.get("actor"))
    if not actor_uri or actor_uri != id_of(doc.get("object")):
        return False
    async with fed.hub.db.read() as conn:
        return await actor_store.get_actor_by_uri(conn, actor_uri) is None


async def refuse_blocked(fed: Federation, *uris: str | None) -> None:
    """Forbidden when any of ``uris`` is on a domain the administrators
    blocked: checked before any key is fetched, so a blocked server costs
    one database read every few seconds and no request."""
    blocks = fed.hub.domain_blocks
    await blocks.fresh(fed.hub.db)
    for uri in uris:
        host = host_of(uri) if uri else ""
        if host and blocks.blocked(host):
            raise Forbidden(f"this server does not accept requests from {host.split(':', 1)[0]}")


async def verify_request(fed: Federation, request: web.Request, body: bytes | None) -> tuple:
    """Signature checks that need no key, then the key: returns ``(parsed, key_row)``."""
    parsed = parse_request_signature(fed, request, body)
    await refuse_blocked(fed, parsed.key_id)
    key = await key_for(fed, parsed)
    return parsed, key


def parse_request_signature(fed: Federation, request: web.Request, body: bytes | None) -> httpsig.ParsedSignature:
    cfg = fed.hub.cfg
    if not httpsig.has_signature(request.headers):
        raise Unauthorized("request is not signed")
    if _normal_host(request.host, cfg.scheme) != cfg.domain:
        raise Unauthorized(f"this request is signed for {request.host}, not {cfg.domain}")
    target_uri = f"{cfg.scheme}://{request.host}{request.raw_path}"
    parsed = httpsig.parse_signature(
        method=request.method, path_qs=request.raw_path, target_uri=target_uri, headers=request.headers
    )
    httpsig.check_coverage(parsed, method=request.method)
    httpsig.check_freshness(
        parsed,
        request.headers,
        now=dt.datetime.now(dt.timezone.utc),
        max_age_s=cfg.signature_max_age_s,
        max_future_s=cfg.signature_max_future_s,
    )
    if body is not None:
        httpsig.check_signed_digest(parsed, httpsig.check_digest(request.headers, body))
    return parsed


def _normal_host(host: str, scheme: str) -> str:
    host = host.lower()
    default = ":443" if scheme == "https" else ":80"
    return host[: -len(default)] if host.endswith(default) else host


def _unavailable(exc: Exception) -> KeyUnavailable:
    """A key we could not fetch: 503 (try again) if its server may recover,
    401 if it answered that the key is gone or unusable."""
    transient = isinstance(exc, FetchError) and not exc.permanent
    return KeyUnavailable("cannot fetch the signing key" + (" right now" if transient else ""),
                          detail=str(exc), status=503 if transient else 401)


async def key_for(fed: Federation, parsed: httpsig.ParsedSignature):
    """The key that verifies ``parsed``, refetching once (rotation). Raises Unauthorized."""
    try:
        key = await discovery.ensure_key(fed, parsed.key_id)
    except (FetchError, NotFound) as exc:
        raise _unavailable(exc) from None
    if key is not None and key.owner_deleted_at is None and httpsig.verify_parsed(parsed, fed.hub.keys.public(key.public_key)):
        return key
    try:
        key = await discovery.ensure_key(fed, parsed.key_id, refresh=True)
    except (FetchError, NotFound) as exc:
        raise _unavailable(exc) from None
    if key is None:
        raise Unauthorized("unknown signing key")
    if key.owner_deleted_at is not None:
        raise Unauthorized("the signing actor has been deleted")
    if not httpsig.verify_parsed(parsed, fed.hub.keys.public(key.public_key)):
        raise Unauthorized("signature does not verify")
    return key


class InboxRoutes:
    def __init__(self, fed: Federation):
        self.fed = fed
        self.writer = InboxWriter(fed)
        self._local_names: set[str] = set()

    async def _local_exists(self, username: str) -> bool:
        if username in self._local_names:
            return True
        async with self.fed.hub.db.read() as conn:
            row = await actor_store.get_local_actor(conn, username)
        if row is None or row.type == "Application":
            return False
        self._local_names.add(username)
        return True

    async def personal(self, request: web.Request) -> web.StreamResponse:
        username = request.match_info["name"].lower()
        if not await self._local_exists(username):
            return error_response(404, "no such actor")
        return await self.receive(request, inbox=username)

    async def shared(self, request: web.Request) -> web.StreamResponse:
        return await self.receive(request, inbox=None)

    async def receive(self, request: web.Request, *, inbox: str | None) -> web.StreamResponse:
        fed = self.fed
        try:
            body = await read_body(request, fed.hub.cfg.max_inbox_body)
            parsed = parse_request_signature(fed, request, body)
            doc = _peek_json(body)
            await refuse_blocked(fed, parsed.key_id, id_of(doc.get("actor")) if isinstance(doc, dict) else None)
            if await _is_unknown_actor_self_delete(fed, doc):
                log.info("dropping %s of unknown actor %s", doc.get("type"), id_of(doc.get("actor")))
                return web.Response(status=202)
            key = await key_for(fed, parsed)
            if doc is None:
                raise BadRequest("body is not valid JSON")
            if not isinstance(doc, dict) or not types_of(doc) or not id_of(doc.get("actor")):
                raise BadRequest("body is not an activity (it needs a type and an actor)")
            actor_uri = id_of(doc.get("actor"))
            if actor_uri != key.owner_uri and not same_origin(actor_uri, key.owner_uri):
                raise Unauthorized("the signer is not the activity's actor")
            activity_id = doc.get("id")
            if activity_id is not None and not valid_uri(activity_id):
                raise BadRequest("the activity's id is not a usable URI")
            if isinstance(activity_id, str) and not same_origin(activity_id, actor_uri):
                # An id on someone else's origin could pre-empt (through our
                # replay check) the real activity that will carry it.
                raise BadRequest("the activity's id is not on its actor's origin")
        except HubError as exc:
            if exc.status >= 500:
                log.exception("inbox error")
            else:
                log.info("inbox refused (%s): %s", exc.status, exc)
            return error_response(exc.status, exc.safe)
        if parsed.scheme == "rfc9421":
            await fed.remember_scheme(host_of(key.owner_uri), "rfc9421")
        uri = valid_uri(doc.get("id")) or "urn:sha256:" + hashlib.sha256(body).hexdigest()
        row = {
            "id": new_id(),
            "uri": uri,
            "type": sorted(types_of(doc))[0].replace("\x00", "")[:64],
            "actor_uri": actor_uri,
            "object_uri": id_of(doc.get("object")),
            "local": False,
            "raw": body.decode("utf-8", "replace"),
        }
        try:
            await self.writer.submit(row, {"inbox": inbox, "signer": key.owner_uri})
        except Exception:
            return error_response(503, "could not store the activity; try again")
        return web.Response(status=202)

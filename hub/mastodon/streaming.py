"""The streaming API: ``/api/v1/streaming`` over WebSocket (and the older
server-sent-events paths ``/api/v1/streaming/user`` ...), ``/api/v1/streaming/health``.

Streams: ``user`` (home timeline updates, notifications, deletes, edits),
``user:notification``, ``direct`` (conversation updates), ``public``,
``public:local``, ``public:remote``, ``hashtag`` and ``hashtag:local`` (with
their ``tag``). Events are Mastodon's: ``{"stream": [...],
"event": "update", "payload": "<JSON text>"}``.

Each connection looks at the database about once a second for what is new
since it last looked (with a few seconds of overlap, remembered by id, so a
message committed late by another process is not missed). That works the
same whatever process wrote the message (a worker, the command line, another
``serve`` behind the same proxy) at the cost of a few small indexed queries per
connection per second.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import sqlalchemy as sa
from aiohttp import WSMsgType, web

from hub.ids import floor_id
from hub.mastodon.core import HUB_KEY, ApiError, Caller, caller_of, digest, holder_of
from hub.mastodon.entities import View
from hub.store import conversations as conv_store
from hub.store import mastodon as client_store
from hub.store.schema import messages
from hub.text import tag_name

log = logging.getLogger(__name__)
STREAMS = ("user", "user:notification", "direct", "public", "public:local", "public:remote",
           "public:media", "public:local:media", "public:remote:media")
TAG_STREAMS = ("hashtag", "hashtag:local")
SILENT_STREAMS = ("list",)
POLL_S = 1.0
HEARTBEAT_S = 5.0
RECHECK_S = 5.0  # how soon a revoked token's stream ends  # SSE comments that keep proxies from closing an idle stream (and let clients notice a close)
OVERLAP_S = 5.0
MAX_LIFETIME_S = 24 * 3600
STOPPING_KEY = web.AppKey("streaming_stopping", asyncio.Event)


async def health(request: web.Request) -> web.Response:
    return web.Response(text="OK", content_type="text/plain")


def _scope_for(stream: str) -> str:
    return "read:notifications" if stream == "user:notification" else "read:statuses"


class Watcher:
    """What one connection is subscribed to, and what it has already sent."""

    def __init__(self, hub, caller: Caller | None):
        self.hub, self.caller = hub, caller
        self.streams: set[str] = set()
        self.tags: set[tuple[str, str]] = set()  # (hashtag | hashtag:local, tag)
        self.since = time.time()
        self.sent: dict[str, float] = {}  # event key -> when sent
        self.checked = time.monotonic()

    async def still_allowed(self) -> bool:
        """The token still speaks for its actor (not revoked, the member still may): checked every few seconds."""
        if self.caller is None or time.monotonic() - self.checked < RECHECK_S:
            return True
        self.checked = time.monotonic()
        async with self.hub.db.read() as conn:
            row = await client_store.get_token_by_id(conn, self.caller.token.id)
            if row is None:
                return False
            return row.account_id is None or await holder_of(conn, row) is not None

    def subscribe(self, stream: str, tag: str | None = None) -> None:
        if stream in SILENT_STREAMS:
            return  # accepted, and quiet: no lists here yet (an error would end masto.js's socket)
        if stream in TAG_STREAMS:
            name = tag_name(tag or "")
            if not name:
                raise ApiError(400, "A hashtag stream needs its tag")
            if len(self.tags) < 50:
                self.tags.add((stream, name))
            return
        if stream not in STREAMS:
            raise ApiError(400, f"Unknown stream type {stream!r}")
        if (stream.startswith("user") or stream == "direct") and (self.caller is None or self.caller.actor is None):
            raise ApiError(401, "Missing access token")
        if self.caller is not None:
            self.caller.need(_scope_for(stream))
        self.streams.add(stream)

    def _fresh(self, key: str) -> bool:
        if key in self.sent:
            return False
        self.sent[key] = time.time()
        return True

    async def poll(self) -> list[dict]:
        now = time.time()
        after = floor_id(max(self.since, now - 3600) - OVERLAP_S)
        for key, at in list(self.sent.items()):
            if at < now - OVERLAP_S * 4:
                del self.sent[key]
        out: list[dict] = []
        me = self.caller.actor if self.caller is not None else None
        async with self.hub.db.read() as conn:
            view = View(self.hub, conn, me)
            home = (await client_store.home_timeline(conn, me.id, min_id=after, limit=40)
                    if self.streams & {"user", "direct"} else [])  # read once for both streams
            if "user" in self.streams:
                for row in home:
                    if row.id >= floor_id(self.since) and self._fresh("u" + row.id):
                        out.append(self._event(["user"], "update", await view.status(row)))
                changed = await self._changed(conn, me.id)
                for row in changed:
                    if (row.deleted_at or row.removed_at) is not None and self._fresh(f"d{row.id}"):
                        out.append(self._event(["user"], "delete", row.id))
                    elif row.edited_at is not None and self._fresh(f"e{row.id}{row.edited_at.timestamp()}"):
                        out.append(self._event(["user"], "status.update", await view.status(row)))
            if "user" in self.streams or "user:notification" in self.streams:
                for row in await client_store.list_notifications(conn, me.id, min_id=after, limit=40):
                    if row.id >= floor_id(self.since) and self._fresh("n" + row.id):
                        data = await view.notification(row)
                        if data is not None:
                            names = [s for s in ("user", "user:notification") if s in self.streams]
                            out.append(self._event(names, "notification", data))
            if "direct" in self.streams:
                for row in home:
                    if (row.id >= floor_id(self.since) and row.conversation_id
                            and self._fresh("c" + row.id)):
                        state = await conv_store.get_state(conn, row.conversation_id, me.id)
                        if state is None:
                            continue
                        unread = await conv_store.unread_counts(conn, [state], self.caller.account.id)
                        rows_ = await conv_store.list_inbox(conn, me.id, conversation_id=row.conversation_id, limit=1)
                        if rows_:
                            from hub.mastodon.api import _conversation_json

                            out.append(self._event(["direct"], "conversation", await _conversation_json(
                                view, rows_[0], unread.get(state.id, 0))))
            for stream, tag in sorted(self.tags):
                rows = await client_store.public_timeline(conn, local=True if stream == "hashtag:local" else None,
                                                          viewer_id=me.id if me else None, tag=tag, min_id=after,
                                                          limit=40)
                for row in rows:
                    if row.id >= floor_id(self.since) and self._fresh(f"{stream}:{tag}:{row.id}"):
                        out.append(self._event([stream, tag], "update", await view.status(row)))
            for stream in [s for s in self.streams if s.startswith("public")]:
                local = True if ":local" in stream else (False if ":remote" in stream else None)
                rows = await client_store.public_timeline(conn, local=local, viewer_id=me.id if me else None,
                                                          only_media=stream.endswith(":media"), min_id=after, limit=40)
                for row in rows:
                    if row.id >= floor_id(self.since) and self._fresh(stream + row.id):
                        out.append(self._event([stream], "update", await view.status(row)))
        return out

    async def _changed(self, conn, actor_id: str) -> list:
        """Messages of the home timeline deleted or edited since the stream began."""
        from datetime import datetime, timezone

        since = datetime.fromtimestamp(self.since - OVERLAP_S, tz=timezone.utc)
        rows = await conn.execute(sa.select(messages).where(
            sa.or_(messages.c.deleted_at > since, messages.c.removed_at > since, messages.c.edited_at > since)
        ).order_by(messages.c.id.desc()).limit(40))
        out = []
        for row in rows:
            gone = row.deleted_at is not None or row.removed_at is not None
            if gone and await client_store.could_see(conn, row.id, actor_id):
                out.append(row)
            elif not gone and await client_store.can_see(conn, row.id, actor_id, None):
                out.append(row)
        return out

    @staticmethod
    def _event(stream: list[str], event: str, payload) -> dict:
        return {"stream": stream, "event": event,
                "payload": payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)}


async def _caller(request: web.Request) -> Caller | None:
    """A token from ``Authorization``, ``access_token`` or the WebSocket protocol header (as Mastodon takes it)."""
    protocol = request.headers.get("Sec-WebSocket-Protocol", "").split(",")[0].strip()
    if protocol and "Authorization" not in request.headers and "access_token" not in request.query:
        hub = request.app[HUB_KEY]
        async with hub.db.read() as conn:
            if await client_store.get_token(conn, digest(protocol)) is None:
                raise ApiError(401, "Invalid access token")
        request = request.clone(headers={**request.headers, "Authorization": f"Bearer {protocol}"})
    return await caller_of(request, required=False)


async def websocket(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    caller = await _caller(request)
    watcher = Watcher(hub, caller)
    first = request.query.get("stream")
    if first:
        watcher.subscribe(first, request.query.get("tag"))
    protocol = request.headers.get("Sec-WebSocket-Protocol", "").split(",")[0].strip() or None
    ws = web.WebSocketResponse(heartbeat=30, protocols=(protocol,) if protocol else ())
    await ws.prepare(request)
    stopping = request.app[STOPPING_KEY]
    deadline = time.monotonic() + MAX_LIFETIME_S

    async def reader() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                data = json.loads(msg.data)
                stream = data.get("stream")
                tag = data.get("tag") if isinstance(data.get("tag"), str) else None
                if data.get("type") == "subscribe":
                    watcher.subscribe(stream, tag)
                elif data.get("type") == "unsubscribe":
                    watcher.streams.discard(stream)
                    watcher.tags.discard((stream, tag_name(tag or "")))
            except ApiError as exc:
                await ws.send_str(json.dumps({"error": exc.message, "status": exc.status}))
            except (ValueError, AttributeError):
                await ws.send_str(json.dumps({"error": "Bad request: a JSON object was expected", "status": 400}))

    reading = asyncio.create_task(reader())
    try:
        while not ws.closed and not reading.done() and not stopping.is_set() and time.monotonic() < deadline:
            if not await watcher.still_allowed():
                await ws.send_str(json.dumps({"error": "The access token was revoked", "status": 401}))
                break
            if watcher.streams or watcher.tags:
                for event in await watcher.poll():
                    await ws.send_str(json.dumps(event, ensure_ascii=False))
            try:
                await asyncio.wait_for(asyncio.shield(stopping.wait()), timeout=POLL_S)
            except asyncio.TimeoutError:
                pass
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        reading.cancel()
        await ws.close()
    return ws


async def sse(request: web.Request) -> web.StreamResponse:
    """The same streams as server-sent events (``/api/v1/streaming/user`` and so on)."""
    hub = request.app[HUB_KEY]
    caller = await _caller(request)
    watcher = Watcher(hub, caller)
    name = request.match_info["stream"].replace("/", ":")
    watcher.subscribe({"public:local": "public:local"}.get(name, name), request.query.get("tag"))
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                       "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    stopping = request.app[STOPPING_KEY]
    deadline = time.monotonic() + MAX_LIFETIME_S
    last_beat = time.monotonic()
    try:
        while not stopping.is_set() and time.monotonic() < deadline:
            if not await watcher.still_allowed():
                break
            for event in await watcher.poll():
                # Our ids are not numbers: a deleted status's id goes as a JSON string, so that clients
                # which parse every event's data as JSON (Mastodon.py) read it.
                data = json.dumps(event["payload"]) if event["event"] == "delete" else event["payload"]
                await resp.write(f"event: {event['event']}\ndata: {data}\n\n".encode())
            if time.monotonic() - last_beat > HEARTBEAT_S:
                await resp.write(b":thump\n\n")
                last_beat = time.monotonic()
            try:
                await asyncio.wait_for(asyncio.shield(stopping.wait()), timeout=POLL_S)
            except asyncio.TimeoutError:
                pass
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return resp


def setup(app: web.Application) -> None:
    app[STOPPING_KEY] = asyncio.Event()

    async def on_shutdown(app: web.Application) -> None:
        app[STOPPING_KEY].set()

    app.on_shutdown.append(on_shutdown)


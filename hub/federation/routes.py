"""ActivityPub GET endpoints and discovery (WebFinger, host-meta, NodeInfo).

Every object URL answers ActivityStreams JSON to ActivityPub clients and HTML
to browsers (``Vary: Accept``). Non-public objects are served only to a
signed request from an actor allowed to see them; anything not visible is
a 404, never a hint that it exists. With ``authorized_fetch`` every GET must
be signed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlencode

import sqlalchemy as sa
from aiohttp import web

from hub import __version__, addressing
from hub import web as pages
from hub.actors import INSTANCE_USERNAME
from hub.errors import HubError, KeyUnavailable, Unauthorized
from hub.federation import render
from hub.federation.documents import host_of
from hub.federation.inbox import InboxRoutes, error_response, verify_request
from hub.store import actors as actor_store
from hub.store import bridges as bridge_store
from hub.store import conversations as conv_store
from hub.store import jobs as job_store
from hub.store import messages as msg_store
from hub.store import social

if TYPE_CHECKING:
    from hub.federation import Federation

log = logging.getLogger(__name__)
PAGE_SIZE = 20
CORS = {"Access-Control-Allow-Origin": "*"}
NODEINFO_21 = "http://nodeinfo.diaspora.software/ns/schema/2.1"
NODEINFO_20 = "http://nodeinfo.diaspora.software/ns/schema/2.0"


def ap_response(doc: dict, *, status: int = 200) -> web.Response:
    resp = web.Response(body=render.dumps(doc), status=status, content_type="application/activity+json", charset="utf-8")
    resp.headers["Vary"] = "Accept"
    return resp


class Routes:
    def __init__(self, fed: Federation):
        self.fed = fed
        self.hub = fed.hub

    # --- who is asking ---------------------------------------------------------------

    async def requester(self, request: web.Request) -> sa.Row | None:
        """The actor whose key signed this GET, or None when unsigned.

        An invalid signature is refused (401), not treated as anonymous. A
        signature whose key cannot be fetched right now is treated as
        anonymous (public content only), unless ``authorized_fetch`` is on.
        """
        from hub.federation.httpsig import has_signature

        if not has_signature(request.headers):
            if self.hub.cfg.authorized_fetch:
                raise Unauthorized("this server requires signed requests")
            return None
        try:
            _parsed, key = await verify_request(self.fed, request, None)
        except KeyUnavailable:
            if self.hub.cfg.authorized_fetch:
                raise
            return None
        async with self.hub.db.read() as conn:
            return await actor_store.get_actor_by_uri(conn, key.owner_uri)

    async def can_see(self, conn, message: sa.Row, viewer: sa.Row | None) -> bool:
        if addressing.visible_to_anyone(message.visibility):
            return True
        if viewer is None:
            return False
        if viewer.id == message.actor_id:
            return True
        addressed = {*(message.to_uris or []), *(message.cc_uris or []), *(message.mention_uris or [])}
        if viewer.uri in addressed:
            return True
        # A server fetches with its instance actor (FEP-fe34 checks of an Add,
        # backfills): it may read what is addressed to someone it hosts.
        if is_server_actor(viewer):
            viewer_host = host_of(viewer.uri)
            if any(host_of(uri) == viewer_host for uri in addressed if not self.hub.uris.is_local(uri)):
                return True
        if message.visibility == "followers":
            return await social.is_following(conn, follower_id=viewer.id, followee_id=message.actor_id)
        return False

    async def visibilities_for(self, conn, author: sa.Row, viewer: sa.Row | None) -> tuple[str, ...]:
        if viewer is not None and (
            viewer.id == author.id or await social.is_following(conn, follower_id=viewer.id, followee_id=author.id)
        ):
            return ("public", "unlisted", "followers")
        return ("public", "unlisted")

    def page_id(self, request: web.Request) -> str:
        """A collection page's id on our public origin (behind a proxy the
        request URL may say http://127.0.0.1:8080)."""
        return self.hub.cfg.base_url + request.raw_path

    # --- discovery -------------------------------------------------------------------

    async def webfinger(self, request: web.Request) -> web.Response:
        resource = request.query.get("resource", "").strip()
        if not resource:
            return web.json_response({"error": "missing resource parameter"}, status=400, headers=CORS)
        cfg = self.hub.cfg
        username = None
        if resource.startswith("acct:") or ("@" in resource and "://" not in resource):
            acct = unquote(resource.removeprefix("acct:")).lstrip("@")
            user, _, domain = acct.rpartition("@")
            if domain.lower() != cfg.domain:
                return web.json_response({"error": "not a local account"}, status=404, headers=CORS)
            username = user.lower()
        else:
            ref = self.hub.uris.parse(resource.rstrip("/"))
            if ref is not None and ref.kind == "actor":
                username = ref.name
            elif ref is not None and ref.kind == "instance":
                username = INSTANCE_USERNAME
        if not username:
            return web.json_response({"error": "unknown resource"}, status=404, headers=CORS)
        async with self.hub.db.read() as conn:
            if username in (INSTANCE_USERNAME, cfg.host):
                actor = await actor_store.get_actor_by_uri(conn, self.hub.uris.instance_actor())
            else:
                actor = await actor_store.get_local_actor(conn, username)
        if actor is None or (actor.type == "Application" and username not in (INSTANCE_USERNAME, cfg.host)):
            return web.json_response({"error": "no such account"}, status=404, headers=CORS)
        profile = actor.url or actor.uri
        jrd = {
            "subject": f"acct:{actor.username}@{cfg.domain}",
            "aliases": list(dict.fromkeys([actor.uri, profile])),
            "links": [
                {"rel": "self", "type": "application/activity+json", "href": actor.uri},
                {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": profile},
            ],
        }
        return web.json_response(jrd, content_type="application/jrd+json", headers=CORS)

    async def host_meta(self, request: web.Request) -> web.Response:
        template = f"{self.hub.cfg.base_url}/.well-known/webfinger?resource={{uri}}"
        if request.path.endswith(".json") or "json" in request.headers.get("Accept", ""):
            return web.json_response({"links": [{"rel": "lrdd", "template": template}]}, headers=CORS)
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
            f'  <Link rel="lrdd" type="application/jrd+json" template="{template}"/>\n'
            "</XRD>\n"
        )
        return web.Response(text=xml, content_type="application/xrd+xml", headers=CORS)

    async def nodeinfo_index(self, request: web.Request) -> web.Response:
        base = self.hub.cfg.base_url
        return web.json_response(
            {"links": [{"rel": NODEINFO_21, "href": f"{base}/nodeinfo/2.1"}, {"rel": NODEINFO_20, "href": f"{base}/nodeinfo/2.0"}]},
            headers=CORS,
        )

    async def nodeinfo(self, request: web.Request) -> web.Response:
        version = request.match_info["version"]
        now = dt.datetime.now(dt.timezone.utc)
        async with self.hub.db.read() as conn:
            users = await actor_store.count_local_actors(conn)
            month = await msg_store.count_active_local_authors(conn, now - dt.timedelta(days=30))
            halfyear = await msg_store.count_active_local_authors(conn, now - dt.timedelta(days=180))
            posts = await msg_store.count_local_messages(conn)
        software = {"name": "roundtable", "version": __version__}
        if version == "2.1":
            software["repository"] = "https://github.com/roundtable-hub/roundtable"
            software["homepage"] = self.hub.cfg.base_url + "/"
        doc = {
            "version": version,
            "software": software,
            "protocols": ["activitypub"],
            "services": {"inbound": [], "outbound": []},
            "openRegistrations": False,
            "usage": {"users": {"total": users, "activeMonth": month, "activeHalfyear": halfyear}, "localPosts": posts},
            "metadata": {"nodeName": self.hub.cfg.instance_name, "nodeDescription": self.hub.cfg.instance_description},
        }
        profile = f"http://nodeinfo.diaspora.software/ns/schema/{version}#"
        return web.Response(
            body=render.dumps(doc), headers={**CORS, "Content-Type": f'application/json; profile="{profile}"'}
        )

    # --- actors and their collections -----------------------------------------------------

    async def _local(self, name: str) -> sa.Row | None:
        async with self.hub.db.read() as conn:
            row = await actor_store.get_local_actor(conn, name.lower())
        return row if row is not None and row.type != "Application" else None

    async def actor(self, request: web.Request) -> web.StreamResponse:
        actor = await self._local(request.match_info["name"])
        if actor is None:
            return error_response(404, "no such actor")
        if actor.deleted_at is not None:  # left for good: a tombstone, so that peers know
            return web.json_response({"@context": "https://www.w3.org/ns/activitystreams", "id": actor.uri,
                                      "type": "Tombstone", "formerType": actor.type,
                                      "deleted": actor.deleted_at.isoformat()}, status=410,
                                     content_type="application/activity+json")
        if not pages.wants_activity_json(request):
            return await pages.profile_page(request, actor)
        if self.hub.cfg.authorized_fetch:
            await self.requester(request)
        # Otherwise the actor document is public: no signature check, so a
        # peer fetching our key never waits on us fetching theirs.
        return ap_response(render.actor_to_json(self.hub, actor))

    async def instance_actor(self, request: web.Request) -> web.StreamResponse:
        return ap_response(render.actor_to_json(self.hub, self.fed.instance_actor))

    async def instance_outbox(self, request: web.Request) -> web.StreamResponse:
        doc = render.collection(self.fed.instance_actor.outbox_uri, 0)
        doc["orderedItems"] = []
        return ap_response(doc)

    async def collection(self, request: web.Request) -> web.StreamResponse:
        actor = await self._local(request.match_info["name"])
        if actor is None:
            return error_response(404, "no such actor")
        which = request.match_info["collection"]
        viewer = await self.requester(request)
        base = getattr(actor, f"{which}_uri")
        page = request.query.get("page")
        max_id = request.query.get("max_id") or None
        async with self.hub.db.read() as conn:
            if which in ("followers", "following"):
                is_followers = which == "followers"
                total = await social.count_follows(conn, actor.id, followers=is_followers)
                if not page:
                    return ap_response(render.collection(base, total, f"{base}?page=true"))
                rows = await social.list_follow_page(conn, actor.id, followers=is_followers, limit=PAGE_SIZE, max_id=max_id)
                items = [r.uri for r in rows]
                nxt = f"{base}?{urlencode({'page': 'true', 'max_id': rows[-1].id})}" if len(rows) == PAGE_SIZE else None
                return ap_response(render.collection_page(self.page_id(request), base, items, next=nxt, total=total))
            if which == "featured":
                doc = render.collection(base, 0)
                doc["orderedItems"] = []
                return ap_response(doc)
            visibilities = await self.visibilities_for(conn, actor, viewer)
            total = await msg_store.count_messages_by_actor(conn, actor.id, visibilities=visibilities)
            if not page:
                return ap_response(render.collection(base, total, f"{base}?page=true"))
            rows = await msg_store.list_messages_by_actor(conn, actor.id, visibilities=visibilities, limit=PAGE_SIZE, max_id=max_id)
            items = [await self._create_for(conn, actor, m) for m in rows]
        nxt = f"{base}?{urlencode({'page': 'true', 'max_id': rows[-1].id})}" if len(rows) == PAGE_SIZE else None
        return ap_response(render.collection_page(self.page_id(request), base, items, next=nxt))

    async def _create_for(self, conn, author: sa.Row, message: sa.Row) -> dict:
        conv = await msg_store.get_conversation_by_id(conn, message.conversation_id) if message.conversation_id else None
        mentioned = await actor_store.get_actors_by_uris(conn, list(message.mention_uris or []))
        files = (await bridge_store.attachments_of(conn, [message.id]))[message.id]
        note = render.note_to_json(
            self.hub, message, author_uri=author.uri, context_uri=conv.uri if conv else None,
            mentioned=mentioned, with_context=False, attachments=files,
        )
        stored = await job_store.get_local_activity_for(conn, type="Create", actor_uri=author.uri, object_uri=message.uri)
        return {
            "id": stored.uri if stored else self.hub.uris.create_of(message.uri),
            "type": "Create",
            "actor": author.uri,
            "published": render.iso(message.published_at),
            "to": list(message.to_uris),
            "cc": list(message.cc_uris),
            "object": note,
        }

    # --- objects ----------------------------------------------------------------------

    async def message(self, request: web.Request) -> web.StreamResponse:
        async with self.hub.db.read() as conn:
            message = await msg_store.get_message_by_id(conn, request.match_info["id"])
            if message is None or not message.local:
                return error_response(404, "no such object")
            author = await actor_store.get_actor_by_id(conn, message.actor_id)
        if message.deleted_at is not None:
            return ap_response(render.tombstone_to_json(message), status=410)
        wants_json = pages.wants_activity_json(request)
        viewer = await self.requester(request) if wants_json else None
        async with self.hub.db.read() as conn:
            if not await self.can_see(conn, message, viewer):
                return error_response(404, "no such object")
            if not wants_json:
                return await pages.note_page(request, message, author)
            conv = await msg_store.get_conversation_by_id(conn, message.conversation_id) if message.conversation_id else None
            mentioned = await actor_store.get_actors_by_uris(conn, list(message.mention_uris or []))
            files = (await bridge_store.attachments_of(conn, [message.id]))[message.id]
        return ap_response(
            render.note_to_json(self.hub, message, author_uri=author.uri, context_uri=conv.uri if conv else None,
                                mentioned=mentioned, attachments=files)
        )

    async def replies(self, request: web.Request) -> web.StreamResponse:
        viewer = await self.requester(request)
        async with self.hub.db.read() as conn:
            message = await msg_store.get_message_by_id(conn, request.match_info["id"])
            if message is None or not message.local or message.deleted_at is not None:
                return error_response(404, "no such object")
            if not await self.can_see(conn, message, viewer):
                return error_response(404, "no such object")
            visibilities = ("public", "unlisted")
            base = self.hub.uris.replies(message.id)
            total = await msg_store.count_replies(conn, message.uri, visibilities=visibilities)
            if not request.query.get("page"):
                return ap_response(render.collection(base, total, f"{base}?page=1"))
            after = request.query.get("min_id") or None
            rows = await msg_store.list_replies(conn, message.uri, visibilities=visibilities, limit=PAGE_SIZE, after_id=after)
        nxt = f"{base}?{urlencode({'page': '1', 'min_id': rows[-1].id})}" if len(rows) == PAGE_SIZE else None
        return ap_response(render.collection_page(self.page_id(request), base, [r.uri for r in rows], next=nxt, total=total))

    async def activity(self, request: web.Request) -> web.StreamResponse:
        viewer = await self.requester(request)
        async with self.hub.db.read() as conn:
            row = await job_store.get_activity_by_id(conn, request.match_info["id"])
            if row is None or not row.local:
                return error_response(404, "no such activity")
            if row.object_uri and self.hub.uris.is_local(row.object_uri):
                message = await msg_store.get_message_by_uri(conn, row.object_uri)
                if message is not None and (message.deleted_at is not None or not await self.can_see(conn, message, viewer)):
                    return error_response(404, "no such activity")
        resp = web.Response(body=row.raw.encode(), content_type="application/activity+json", charset="utf-8")
        resp.headers["Vary"] = "Accept"
        return resp

    async def conversation(self, request: web.Request) -> web.StreamResponse:
        """What a message's ``context`` names.

        A conversation with participants is its FEP-171b container: an
        OrderedCollection of the owner's Adds, oldest first, readable by its
        participants (and the servers they are on) only. A thread of posts is
        an OrderedCollection of its public posts (FEP-7888 / FEP-f228).
        """
        signed = "Signature" in request.headers or "Signature-Input" in request.headers
        if not signed and not pages.wants_activity_json(request):
            from hub import web_public

            return await web_public.conversation_page(request, request.match_info["id"])
        viewer = await self.requester(request)
        async with self.hub.db.read() as conn:
            conv = await msg_store.get_conversation_by_id(conn, request.match_info["id"])
            if conv is None or not self.hub.uris.is_local(conv.uri):
                return error_response(404, "no such conversation")
            participants = await conv_store.list_participants(conn, conv.id)
            if participants:
                return await self._container(request, conn, conv, participants, viewer)
            owner = await actor_store.get_actor_by_id(conn, conv.owner_id) if conv.owner_id else None
            visibilities = ("public", "unlisted")
            total = await msg_store.count_conversation_messages(conn, conv.id, visibilities=visibilities)
            base = conv.uri
            if not request.query.get("page"):
                doc = render.collection(base, total, f"{base}?page=1")
                if owner is not None:
                    doc["attributedTo"] = owner.uri
                return ap_response(doc)
            after = request.query.get("min_id") or None
            rows = await msg_store.list_conversation_messages(conn, conv.id, visibilities=visibilities, limit=PAGE_SIZE, after_id=after)
        nxt = f"{base}?{urlencode({'page': '1', 'min_id': rows[-1].id})}" if len(rows) == PAGE_SIZE else None
        return ap_response(render.collection_page(self.page_id(request), base, [r.uri for r in rows], next=nxt, total=total))

    async def _container(self, request, conn, conv, participants, viewer) -> web.StreamResponse:
        from hub.federation import conversations as ap_conversations

        hosts = {host_of(p.uri) for p in participants if not p.local}
        allowed = conv.visibility == "public" or viewer is not None and (
            any(p.id == viewer.id for p in participants) or (is_server_actor(viewer) and host_of(viewer.uri) in hosts)
        )
        if not allowed:
            return error_response(404, "no such conversation")
        owner = ap_conversations.owner_of(participants)
        messages = await conv_store.list_messages(conn, conv.id)
        base = conv.uri
        if not request.query.get("page"):
            doc = render.collection(base, len(messages), f"{base}?page=1")
            doc["@context"] = render.NOTE_CONTEXT
            doc["attributedTo"] = owner.uri if owner else None
            doc["collectionOf"] = "Activity"
            from hub.store.schema import conversation_aliases

            aliases = sorted((await conn.execute(sa.select(conversation_aliases.c.uri).where(
                conversation_aliases.c.conversation_id == conv.id))).scalars())
            if aliases:  # the collections it was known as (a moved customer's old hub, an adopted thread)
                doc["alsoKnownAs"] = aliases
            return ap_response(doc)
        after = request.query.get("min_id")
        rows = [m for m in messages if not after or m.id > after][:PAGE_SIZE]
        items = []
        for m in rows:
            stored = await job_store.get_activity_for(conn, type="Add", object_uri=m.uri)
            if stored is not None and stored.local:
                item = json.loads(stored.raw)
                item.pop("@context", None)
            else:
                inner = await ap_conversations.create_activity_of(conn, m) or {"type": "Create", "object": m.uri}
                inner.pop("@context", None)
                item = {"id": self.hub.uris.container_item(conv.id, m.id), "type": "Add",
                        "actor": owner.uri if owner else None, "object": inner,
                        "target": ap_conversations.container_ref(conv, owner.uri if owner else None)}
            items.append(item)
        nxt = f"{base}?{urlencode({'page': '1', 'min_id': rows[-1].id})}" if len(rows) == PAGE_SIZE else None
        page = render.collection_page(self.page_id(request), base, items, next=nxt, total=len(messages))
        page["@context"] = render.NOTE_CONTEXT
        return ap_response(page)

    async def instance_inbox(self, request: web.Request) -> web.StreamResponse:
        return await self.inbox.receive(request, inbox=None)


def is_server_actor(actor: sa.Row) -> bool:
    """An instance's own actor (Mastodon, Misskey: Application; GoToSocial: Service)."""
    return actor.type in ("Application", "Service")


def hub_errors(handler):
    """A HubError raised while serving becomes its status and safe message."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except HubError as exc:
            if exc.status >= 500:
                log.exception("error serving %s", request.path)
            return error_response(exc.status, exc.safe)

    return wrapped


def setup(app: web.Application, fed: Federation) -> None:
    r = Routes(fed)
    inbox = InboxRoutes(fed)
    r.inbox = inbox
    router = app.router
    # Inboxes answer their own errors (no wrapper on the hottest path).
    router.add_post("/inbox", inbox.shared)
    router.add_post(r"/users/{name:[A-Za-z0-9_]+}/inbox", inbox.personal)
    router.add_post("/actor/inbox", r.instance_inbox)
    for path, handler in (
        ("/.well-known/webfinger", r.webfinger),
        ("/.well-known/host-meta", r.host_meta),
        ("/.well-known/host-meta.json", r.host_meta),
        ("/.well-known/nodeinfo", r.nodeinfo_index),
        (r"/nodeinfo/{version:2\.[01]}", r.nodeinfo),
        ("/actor", r.instance_actor),
        ("/actor/outbox", r.instance_outbox),
        (r"/users/{name:[A-Za-z0-9_]+}", r.actor),
        (r"/users/{name:[A-Za-z0-9_]+}/{collection:outbox|followers|following|featured}", r.collection),
        (r"/m/{id:[0-9a-z]{26}}", r.message),
        (r"/m/{id:[0-9a-z]{26}}/replies", r.replies),
        (r"/a/{id:[0-9a-z]{26}}", r.activity),
        (r"/c/{id:[0-9a-z]{26}}", r.conversation),
    ):
        router.add_get(path, hub_errors(handler))

"""The Mastodon client API's endpoints, on the same services as the web pages
and the command line (``hub.outbox``, ``hub.inbox.conversations``...).

A direct status to people starts a Roundtable conversation (owned by the
customer, as everywhere here); a reply inside one of the caller's
conversations is a message of that conversation; everything else is an
ordinary note. ``/api/v1/conversations`` lists the caller's conversations.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import sqlalchemy as sa
from aiohttp import web

import hub as hub_pkg
from hub import actors as actors_mod
from hub import media, outbox
from hub.errors import HubError
from hub.ids import is_id, new_id
from hub.inbox import conversations as conv_service
from hub.inbox import state as state_service
from hub.inbox.access import audit
from hub.mastodon import entities, push
from hub.mastodon.core import (
    HUB_KEY,
    ApiError,
    Caller,
    as_bool,
    as_list,
    caller_of,
    iso,
    json_response,
    limit_of,
    link_header,
    paging,
    params_of,
    text_param,
    viewer_of,
)
from hub.mastodon.entities import VISIBILITY_IN, View
from hub.store import actors as actor_store
from hub.store import conversations as conv_store
from hub.store import mastodon as client_store
from hub.store import messages as msg_store
from hub.store import social
from hub.text import find_mentions

MASTODON_VERSION = "4.3.0"
MAX_MEDIA = 4
MEDIA_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif"]


def _not_found() -> ApiError:
    return ApiError(404, "Record not found")


def _hub(request: web.Request):
    return request.app[HUB_KEY]


# --- instance -------------------------------------------------------------------------------


async def _contact_account(hub, conn) -> sa.Row | None:
    from hub.store.schema import accounts, actors

    stmt = (sa.select(actors).join(accounts, accounts.c.username == actors.c.username)
            .where(accounts.c.is_admin.is_(True), actors.c.local.is_(True)).order_by(accounts.c.created_at).limit(1))
    return (await conn.execute(stmt)).first()


def _limits(hub) -> dict:
    return {
        "statuses": {"max_characters": outbox.MAX_TEXT, "max_media_attachments": MAX_MEDIA,
                     "characters_reserved_per_url": 23},
        "media_attachments": {"supported_mime_types": MEDIA_TYPES, "image_size_limit": hub.cfg.max_attachment_bytes,
                              "image_matrix_limit": 16777216, "video_size_limit": 0, "video_frame_rate_limit": 0,
                              "video_matrix_limit": 0, "description_limit": 1500},
        "polls": {"max_options": 0, "max_characters_per_option": 0, "min_expiration": 0, "max_expiration": 0},
        "accounts": {"max_featured_tags": 0, "max_pinned_statuses": 0},
        "translation": {"enabled": False},
    }


def version_string() -> str:
    return f"{MASTODON_VERSION} (compatible; Roundtable {hub_pkg.__version__})"


async def _stats(hub, conn) -> dict:
    from hub.store.schema import actors

    users = await actor_store.count_local_actors(conn)
    statuses = await msg_store.count_local_messages(conn)
    domains = (await conn.execute(sa.select(sa.func.count(sa.distinct(actors.c.domain))).where(
        actors.c.local.is_(False)))).scalar_one()
    return {"user_count": users, "status_count": statuses, "domain_count": int(domains)}


async def instance_v1(request: web.Request) -> web.Response:
    hub = _hub(request)
    async with hub.db.read() as conn:
        contact = await _contact_account(hub, conn)
        view = View(hub, conn)
        stats = await _stats(hub, conn)
        contact_json = await view.account(contact) if contact is not None else None
    limits = _limits(hub)
    ws = hub.cfg.base_url.replace("https://", "wss://").replace("http://", "ws://")
    return json_response({
        "uri": hub.cfg.domain,
        "title": hub.cfg.instance_name,
        "short_description": hub.cfg.instance_description,
        "description": hub.cfg.instance_description,
        "email": hub.cfg.contact_email if hasattr(hub.cfg, "contact_email") else "",
        "version": version_string(),
        "urls": {"streaming_api": ws},
        "stats": stats,
        "thumbnail": f"{hub.cfg.base_url}/static/avatar.png",
        "languages": ["en"],
        "registrations": bool(hub.cfg.signups),
        "approval_required": False,
        "invites_enabled": True,
        "configuration": {k: v for k, v in limits.items() if k in ("statuses", "media_attachments", "polls", "accounts")},
        "contact_account": contact_json,
        "rules": [],
    })


async def instance_v2(request: web.Request) -> web.Response:
    hub = _hub(request)
    async with hub.db.read() as conn:
        contact = await _contact_account(hub, conn)
        contact_json = await View(hub, conn).account(contact) if contact is not None else None
        active = await msg_store.count_active_local_authors(
            conn, dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30))
    ws = hub.cfg.base_url.replace("https://", "wss://").replace("http://", "ws://")
    return json_response({
        "domain": hub.cfg.domain,
        "title": hub.cfg.instance_name,
        "version": version_string(),
        "source_url": "https://github.com/roundtable-hub/roundtable",
        "description": hub.cfg.instance_description,
        "usage": {"users": {"active_month": active}},
        "thumbnail": {"url": f"{hub.cfg.base_url}/static/avatar.png", "blurhash": None, "versions": {}},
        "icon": [],
        "languages": ["en"],
        "configuration": {"urls": {"streaming": ws, "status": None},
                          "vapid": {"public_key": await push.public_key_async(hub)},
                          **_limits(hub)},
        "registrations": {"enabled": bool(hub.cfg.signups), "approval_required": False, "message": None,
                          "url": f"{hub.cfg.base_url}/signup"},
        "api_versions": {"mastodon": 2},
        "contact": {"email": getattr(hub.cfg, "contact_email", "") or "", "account": contact_json},
        "rules": [],
    })


async def instance_extras(request: web.Request) -> web.Response:
    name = request.match_info.get("what", "")
    if name == "extended_description":
        hub = _hub(request)
        return json_response({"updated_at": iso(dt.datetime.now(dt.timezone.utc)),
                              "content": f"<p>{hub.cfg.instance_description}</p>"})
    if name == "translation_languages":
        return json_response({})
    return json_response([])


# --- accounts -------------------------------------------------------------------------------


async def _actor(conn, actor_id: str) -> sa.Row:
    row = await actor_store.get_actor_by_id(conn, actor_id) if is_id(actor_id) else None
    if row is None or row.deleted_at is not None or row.type == "Application":
        raise _not_found()
    return row


async def verify_credentials(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("profile")
    async with hub.db.read() as conn:
        return json_response(await View(hub, conn, caller.actor).account(caller.actor, source=True))


async def update_credentials(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("write:accounts")
    caller.acting.require("admin")  # an organization's profile is its admins'
    params = await params_of(request, files=True, max_file=hub.cfg.max_attachment_bytes)
    changes: dict = {}
    if "display_name" in params:
        changes["name"] = text_param(params, "display_name")[:100] or None
    if "note" in params:
        from hub.text import plain_to_html

        note = text_param(params, "note")
        if len(note) > 500:
            raise ApiError(422, "Validation failed: Note is too long (maximum is 500 characters)")
        changes["summary"] = plain_to_html(note) if note else None
    if "locked" in params:
        changes["manually_approves_followers"] = as_bool(params["locked"])
    if "discoverable" in params:
        changes["discoverable"] = as_bool(params["discoverable"])
    if "fields_attributes" in params:
        fields = [f for f in as_list(params["fields_attributes"]) if isinstance(f, dict)]
        changes["fields"] = [{"name": text_param(f, "name"), "value": text_param(f, "value")}
                             for f in fields if (f.get("name") or f.get("value"))]
    avatar = params.get("avatar")
    if isinstance(avatar, tuple):
        upload = await _store_upload(hub, caller, avatar, description=None)
        changes["icon_url"] = f"{hub.cfg.base_url}/media/u/{upload.id}/{upload.filename}"
    header = params.get("header")
    if isinstance(header, tuple):  # shown to apps; kept in the actor's local settings
        upload = await _store_upload(hub, caller, header, description=None)
        await actors_mod.update_settings(hub, caller.actor, {
            "header_url": f"{hub.cfg.base_url}/media/u/{upload.id}/{upload.filename}"})
    try:
        actor = await actors_mod.update_profile(hub, caller.actor, **changes) if changes else caller.actor
    except HubError as exc:
        raise ApiError(422, f"Validation failed: {exc.safe}") from None
    async with hub.db.read() as conn:
        return json_response(await View(hub, conn, actor).account(actor, source=True))


async def get_account(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await viewer_of(request, "read:accounts")
    async with hub.db.read() as conn:
        actor = await _actor(conn, request.match_info["id"])
        return json_response(await View(hub, conn, caller.actor if caller else None).account(actor))


async def _resolve(hub, handle: str, *, resolve: bool) -> sa.Row | None:
    handle = handle.strip().lstrip("@")
    if not handle:
        return None
    user, _, domain = handle.partition("@")
    async with hub.db.read() as conn:
        if not domain or domain.lower() == hub.cfg.domain.lower():
            row = await actor_store.get_local_actor(conn, user.lower())
            return row if row is not None and row.type != "Application" else None
        row = await actor_store.get_remote_actor_by_handle(conn, user, domain.lower())
    if row is not None or not resolve or hub.resolve_handle is None:
        return row
    try:
        return await hub.resolve_handle(f"{user}@{domain}")
    except HubError:
        return None


async def lookup_account(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await viewer_of(request, "read:accounts")
    acct = request.query.get("acct", "")
    if not acct:
        raise ApiError(400, "acct is required")
    actor = await _resolve(hub, acct, resolve=caller is not None)  # only a signed-in caller makes us fetch
    if actor is None:
        raise _not_found()
    async with hub.db.read() as conn:
        return json_response(await View(hub, conn, caller.actor if caller and caller.actor else None).account(actor))


async def search_accounts(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("read:accounts")
    params = await params_of(request)
    q = str(params.get("q") or "").strip()
    limit = limit_of(params, 40, 80)
    found = await _search_actors(hub, q, resolve=as_bool(params.get("resolve")), limit=limit)
    async with hub.db.read() as conn:
        view = View(hub, conn, caller.actor)
        return json_response([await view.account(a) for a in found])


async def _search_actors(hub, q: str, *, resolve: bool, limit: int) -> list[sa.Row]:
    if not q:
        return []
    out: dict[str, sa.Row] = {}
    if "@" in q.strip("@") or q.startswith("http"):
        actor = None
        if q.startswith("http"):
            if resolve and hub.resolve_handle is not None:
                try:
                    actor = await hub.resolve_handle(q)
                except HubError:
                    actor = None
        else:
            actor = await _resolve(hub, q, resolve=resolve)
        if actor is not None:
            out[actor.id] = actor
    if "@" not in q.strip("@") and not q.startswith("http"):  # a name: accounts whose username or name match
        async with hub.db.read() as conn:
            for row in await client_store.search_local_actors(conn, q.strip("@"), limit=limit):
                out.setdefault(row.id, row)
    return [a for a in out.values() if a.deleted_at is None][:limit]


async def account_statuses(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await viewer_of(request, "read:statuses")
    viewer = caller.actor if caller else None
    params = await params_of(request)
    async with hub.db.read() as conn:
        actor = await _actor(conn, request.match_info["id"])
        if as_bool(params.get("pinned")):
            return json_response([])
        rows = await client_store.account_statuses(
            conn, actor.id, viewer_id=viewer.id if viewer else None, viewer_uri=viewer.uri if viewer else None,
            exclude_replies=as_bool(params.get("exclude_replies")), only_media=as_bool(params.get("only_media")),
            limit=limit_of(params), **paging(params))
        data = await View(hub, conn, viewer).statuses(rows)
    return json_response(data, headers=link_header(request, [r.id for r in rows], params))


async def relationships(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("read:follows")
    params = await params_of(request)
    ids = [str(i) for i in as_list(params.get("id"))][:40]
    out = []
    async with hub.db.read() as conn:
        view = View(hub, conn, caller.actor)
        for i in ids:
            target = await actor_store.get_actor_by_id(conn, i) if is_id(i) else None
            if target is not None:
                out.append(await view.relationship(target))
    return json_response(out)


async def _relationship(hub, caller: Caller, target: sa.Row) -> web.Response:
    async with hub.db.read() as conn:
        return json_response(await View(hub, conn, caller.actor).relationship(target))


async def account_action(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    action = request.match_info["action"]
    need = {"follow": "write:follows", "unfollow": "write:follows", "block": "write:blocks",
            "unblock": "write:blocks", "mute": "write:mutes", "unmute": "write:mutes",
            "remove_from_followers": "write:follows", "note": "write:accounts", "pin": "write:accounts",
            "unpin": "write:accounts"}.get(action)
    if need is None:
        raise _not_found()
    caller.need(need)
    caller.acting.require("agent")
    params = await params_of(request)
    async with hub.db.read() as conn:
        target = await _actor(conn, request.match_info["id"])
    me = caller.actor
    try:
        if action == "follow":
            await outbox.follow(hub, me, target)
        elif action == "unfollow":
            try:
                await outbox.unfollow(hub, me, target)
            except HubError:
                pass  # not following: nothing to undo
        elif action == "remove_from_followers":
            async with hub.db.read() as conn:
                follow = await social.get_follow(conn, follower_id=target.id, followee_id=me.id)
            if follow is not None:
                await outbox.answer_follow_request(hub, me, target, accept=False)
        elif action == "block":
            await outbox.block(hub, me, target)
        elif action == "unblock":
            try:
                await outbox.unblock(hub, me, target)
            except HubError:
                pass
        elif action == "mute":
            if target.id == me.id:
                raise ApiError(422, "you cannot mute yourself")
            try:
                duration = int(text_param(params, "duration", default="0") or 0)
            except ValueError:
                raise ApiError(422, "Validation failed: duration must be a number of seconds") from None
            if not 0 <= duration <= 10 * 365 * 86400:
                raise ApiError(422, "Validation failed: duration must be between 0 and ten years")
            expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=duration) if duration > 0 else None
            async with hub.db.write() as conn:
                await client_store.put_mute(conn, me.id, target.id,
                                            notifications_too=as_bool(params.get("notifications"), True),
                                            expires_at=expires)
        elif action == "unmute":
            async with hub.db.write() as conn:
                await client_store.delete_mute(conn, me.id, target.id)
        else:
            raise ApiError(422, f"{action} is not supported here")
    except HubError as exc:
        raise ApiError(exc.status if exc.status in (403, 404) else 422, exc.safe) from None
    return await _relationship(hub, caller, target)


async def follow_list(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await viewer_of(request, "read:accounts")
    params = await params_of(request)
    followers = request.match_info["which"] == "followers"
    limit = limit_of(params, 40, 80)
    async with hub.db.read() as conn:
        actor = await _actor(conn, request.match_info["id"])
        rows = await social.list_follow_page(conn, actor.id, followers=followers, limit=limit,
                                             max_id=params.get("max_id"))
        view = View(hub, conn, caller.actor if caller else None)
        out = []
        for r in rows:
            other = await view.actor_by_uri(r.uri)
            if other is not None:
                out.append(await view.account(other))
    return json_response(out, headers=link_header(request, [r.id for r in rows], params))


async def follow_requests(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("read:follows")
    async with hub.db.read() as conn:
        rows = await social.list_pending_follow_requests(conn, caller.actor.id)
        view = View(hub, conn, caller.actor)
        out = []
        for r in rows:
            who = await view.actor(r.follower_id)
            if who is not None:
                out.append(await view.account(who))
    return json_response(out)


async def answer_follow_request(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("write:follows")
    caller.acting.require("agent")
    accept = request.match_info["answer"] == "authorize"
    async with hub.db.read() as conn:
        target = await _actor(conn, request.match_info["id"])
    try:
        await outbox.answer_follow_request(hub, caller.actor, target, accept=accept)
    except HubError as exc:
        raise ApiError(404, exc.safe) from None
    return await _relationship(hub, caller, target)


async def blocks_list(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("read:blocks")
    async with hub.db.read() as conn:
        view = View(hub, conn, caller.actor)
        from hub.store.schema import blocks

        ids = (await conn.execute(sa.select(blocks.c.blocked_id).where(blocks.c.blocker_id == caller.actor.id)
                                  .order_by(blocks.c.id.desc()))).scalars()
        out = []
        for i in list(ids):
            who = await view.actor(i)
            if who is not None:
                out.append(await view.account(who))
    return json_response(out)


async def mutes_list(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("read:mutes")
    async with hub.db.read() as conn:
        view = View(hub, conn, caller.actor)
        out = []
        for m in await client_store.list_muted(conn, caller.actor.id):
            who = await view.actor(m.target_id)
            if who is not None:
                out.append({**await view.account(who), "mute_expires_at": iso(m.expires_at)})
    return json_response(out)


# --- statuses -------------------------------------------------------------------------------


async def _visible_status(conn, message_id: str, viewer: sa.Row | None) -> sa.Row:
    row = await msg_store.get_message_by_id(conn, message_id) if is_id(message_id) else None
    if row is None or row.deleted_at is not None or row.removed_at is not None:
        raise _not_found()
    if not await client_store.can_see(conn, row.id, viewer.id if viewer else None, viewer.uri if viewer else None):
        raise _not_found()
    return row


async def _mentioned(hub, text: str) -> list[sa.Row]:
    out: dict[str, sa.Row] = {}
    for user, host in find_mentions(text)[:20]:
        actor = await _resolve(hub, f"{user}@{host}" if host else user, resolve=True)
        if actor is not None and actor.type != "Application":
            out[actor.id] = actor
    return list(out.values())


async def _uploads_for(hub, caller: Caller, ids: list) -> list[media.NewFile]:
    if len(ids) > MAX_MEDIA:
        raise ApiError(422, f"Validation failed: a status can carry at most {MAX_MEDIA} files")
    files = []
    async with hub.db.read() as conn:
        for i in ids:
            row = await client_store.get_upload(conn, str(i)) if is_id(str(i)) else None
            if row is None or row.actor_id != caller.actor.id:
                raise ApiError(422, f"Validation failed: no media with id {i!r}")
            if row.message_id is not None:
                raise ApiError(422, "Validation failed: that media is already attached to a status")
            files.append(row)
    out = []
    for row in files:
        data = await asyncio.to_thread(media.path_of(hub.cfg, row.sha256).read_bytes)
        out.append(media.NewFile(filename=row.filename, content_type=row.content_type, data=data,
                                 description=row.description, file_id=row.id))
    return out


async def create_status(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("write:statuses")
    params = await params_of(request)
    key = request.headers.get("Idempotency-Key", "").strip()[:255]
    if key:
        async with hub.db.read() as conn:
            existing = await client_store.get_idempotent(conn, caller.token.id, key)
            if existing:
                row = await msg_store.get_message_by_id(conn, existing)
                if row is not None:
                    return json_response(await View(hub, conn, caller.actor).status(row))
    if params.get("scheduled_at"):
        raise ApiError(422, "Validation failed: scheduled statuses are not supported here")
    if params.get("poll"):
        raise ApiError(422, "Validation failed: polls are not supported here")
    text = text_param(params, "status")
    media_ids = as_list(params.get("media_ids"))
    if not text.strip() and not media_ids:
        raise ApiError(422, "Validation failed: Text can't be blank")
    if len(text) > outbox.MAX_TEXT:
        raise ApiError(422, f"Validation failed: Text character limit of {outbox.MAX_TEXT} exceeded")
    visibility_in = text_param(params, "visibility") or "public"
    if visibility_in not in VISIBILITY_IN:
        raise ApiError(422, f"Validation failed: visibility {visibility_in!r} is not one of "
                            f"{', '.join(VISIBILITY_IN)}")
    visibility = VISIBILITY_IN[visibility_in]
    spoiler = text_param(params, "spoiler_text").strip()[:500] or None
    files = await _uploads_for(hub, caller, media_ids)
    parent = None
    if params.get("in_reply_to_id"):
        async with hub.db.read() as conn:
            try:
                parent = await _visible_status(conn, text_param(params, "in_reply_to_id"), caller.actor)
            except ApiError:
                raise ApiError(404, "Record not found: the status replied to") from None
    mentioned = await _mentioned(hub, text)
    acting = caller.acting
    try:
        message = None
        if parent is not None and parent.conversation_id:
            async with hub.db.read() as conn:
                conversation = await msg_store.get_conversation_by_id(conn, parent.conversation_id)
                joined = await conv_store.is_participant(conn, conversation.id, caller.actor.id)
            if joined and await _is_roundtable_conversation(hub, conversation.id):
                message = await conv_service.reply(hub, acting, conversation, text, in_reply_to_uri=parent.uri,
                                                   files=files)
        if message is None and visibility == "direct" and parent is None:
            targets = [m for m in mentioned if m.id != caller.actor.id]
            if not targets:
                raise ApiError(422, "Validation failed: a direct message needs someone to write to (an @mention)")
            _conversation, message = await conv_service.start(hub, acting, targets, text, files=files)
        if message is None:
            acting.require("agent")
            stored = await conv_service.store_files(hub, files)
            message = await outbox.post_note(hub, caller.actor, text, visibility=visibility, recipients=mentioned,
                                             in_reply_to=parent, summary=spoiler, files=stored)
        if as_bool(params.get("sensitive")) and not message.sensitive:  # media behind a warning, no spoiler text
            async with hub.db.write() as conn:
                await msg_store.update_message(conn, message.id, {"sensitive": True})
    except HubError as exc:
        raise ApiError(exc.status if exc.status in (403, 404, 413) else 422, f"Validation failed: {exc.safe}") from None
    async with hub.db.write() as conn:
        for f in files:
            await client_store.update_upload(conn, f.file_id, {"message_id": message.id})
        if key:
            await client_store.put_idempotent(conn, caller.token.id, key, message.id)
    async with hub.db.read() as conn:
        message = await msg_store.get_message_by_id(conn, message.id)
        return json_response(await View(hub, conn, caller.actor).status(message))


async def _is_roundtable_conversation(hub, conversation_id: str) -> bool:
    async with hub.db.read() as conn:
        return bool(await conv_store.list_participants(conn, conversation_id))


async def get_status(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await viewer_of(request, "read:statuses")
    viewer = caller.actor if caller else None
    async with hub.db.read() as conn:
        row = await _visible_status(conn, request.match_info["id"], viewer)
        return json_response(await View(hub, conn, viewer).status(row))


async def _own_status(hub, caller: Caller, status_id: str) -> sa.Row:
    async with hub.db.read() as conn:
        row = await _visible_status(conn, status_id, caller.actor)
    if row.actor_id != caller.actor.id or not row.local:
        raise _not_found()
    return row


async def edit_status(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("write:statuses")
    caller.acting.require("agent")
    row = await _own_status(hub, caller, request.match_info["id"])
    params = await params_of(request)
    text = text_param(params, "status")
    if not text.strip():
        raise ApiError(422, "Validation failed: Text can't be blank")
    await _edit_media(hub, caller, row, params)
    try:
        await outbox.edit_note(hub, caller.actor, row, text)
    except HubError as exc:
        raise ApiError(422, f"Validation failed: {exc.safe}") from None
    if "spoiler_text" in params or "sensitive" in params:
        spoiler = text_param(params, "spoiler_text").strip()[:500] or None
        async with hub.db.write() as conn:
            await msg_store.update_message(conn, row.id, {"summary": spoiler, "sensitive": bool(spoiler) or as_bool(
                params.get("sensitive"))})
    async with hub.db.read() as conn:
        row = await msg_store.get_message_by_id(conn, row.id)
        return json_response(await View(hub, conn, caller.actor).status(row))


async def delete_status(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("write:statuses")
    caller.acting.require("agent")
    row = await _own_status(hub, caller, request.match_info["id"])
    async with hub.db.read() as conn:
        data = await View(hub, conn, caller.actor).status(row)
    await outbox.delete_note(hub, caller.actor, row)
    data["text"] = row.content_text
    return json_response(data)


async def status_source(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("read:statuses")
    row = await _own_status(hub, caller, request.match_info["id"])
    return json_response({"id": row.id, "text": row.content_text, "spoiler_text": row.summary or ""})


async def status_history(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await viewer_of(request, "read:statuses")
    viewer = caller.actor if caller else None
    async with hub.db.read() as conn:
        row = await _visible_status(conn, request.match_info["id"], viewer)
        data = await View(hub, conn, viewer).status(row)
        versions = await msg_store.versions_of(conn, row.id)
    # every earlier version (oldest first), then the current one; files are the current ones throughout
    common = {k: data[k] for k in ("account", "media_attachments", "emojis", "poll")}
    out = [{**common, "content": v.content_html, "spoiler_text": v.summary or "", "sensitive": bool(v.sensitive),
            "created_at": iso(v.created_at)} for v in versions]
    out.append({**common, "content": data["content"], "spoiler_text": data["spoiler_text"],
                "sensitive": data["sensitive"], "created_at": data["edited_at"] or data["created_at"]})
    return json_response(out)


async def status_context(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await viewer_of(request, "read:statuses")
    viewer = caller.actor if caller else None
    vid, vuri = (viewer.id, viewer.uri) if viewer else (None, None)
    async with hub.db.read() as conn:
        row = await _visible_status(conn, request.match_info["id"], viewer)
        ancestors = []
        parent_uri, seen = row.in_reply_to_uri, {row.id}
        while parent_uri and len(ancestors) < 40:
            parent = await msg_store.get_message_by_uri(conn, parent_uri)
            if parent is None or parent.id in seen:
                break
            seen.add(parent.id)
            if parent.deleted_at is None and parent.removed_at is None and await client_store.can_see(
                    conn, parent.id, vid, vuri):
                ancestors.append(parent)
            parent_uri = parent.in_reply_to_uri
        ancestors.reverse()
        descendants, frontier = [], [row.uri]
        while frontier and len(descendants) < 200:
            uri = frontier.pop(0)
            for ref in await msg_store.list_replies(conn, uri, limit=100,
                                                    visibilities=("public", "unlisted", "followers", "direct")):
                if ref.id in seen:
                    continue
                child = await msg_store.get_message_by_id(conn, ref.id)
                seen.add(child.id)
                frontier.append(child.uri)
                if child.deleted_at is None and child.removed_at is None and await client_store.can_see(
                        conn, child.id, vid, vuri):
                    descendants.append(child)
        descendants.sort(key=lambda m: m.published_at)
        view = View(hub, conn, viewer)
        return json_response({"ancestors": await view.statuses(ancestors),
                              "descendants": await view.statuses(descendants)})


async def status_action(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    action = request.match_info["action"]
    kinds = {"favourite": ("like", False), "unfavourite": ("like", True), "reblog": ("announce", False),
             "unreblog": ("announce", True)}
    if action in ("bookmark", "unbookmark"):
        caller.need("write:bookmarks")
        async with hub.db.write() as conn:
            row = await _visible_status(conn, request.match_info["id"], caller.actor)
            await client_store.set_bookmark(conn, caller.actor.id, row.id, action == "bookmark")
        async with hub.db.read() as conn:
            return json_response(await View(hub, conn, caller.actor).status(row))
    if action in ("pin", "unpin", "mute", "unmute"):
        caller.need("write:accounts")
        raise ApiError(422, f"{action} is not supported here yet")
    if action not in kinds:
        raise _not_found()
    caller.need("write:favourites" if "favourite" in action else "write:statuses")
    caller.acting.require("agent")
    kind, undo = kinds[action]
    async with hub.db.read() as conn:
        row = await _visible_status(conn, request.match_info["id"], caller.actor)
    try:
        await outbox.react(hub, caller.actor, row, kind, undo=undo)
    except HubError as exc:
        if not (undo and exc.status == 404):
            raise ApiError(exc.status if exc.status in (403, 404) else 422, exc.safe) from None
    async with hub.db.read() as conn:
        row = await msg_store.get_message_by_id(conn, row.id)
        view = View(hub, conn, caller.actor)
        if kind == "announce" and not undo:
            reaction = await social.get_reaction(conn, kind="announce", actor_id=caller.actor.id, object_uri=row.uri)
            if reaction is not None:
                return json_response(await view.reblog(reaction, row))
        return json_response(await view.status(row))


async def status_reactors(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await viewer_of(request, "read:accounts")
    viewer = caller.actor if caller else None
    kind = "like" if request.match_info["which"] == "favourited_by" else "announce"
    async with hub.db.read() as conn:
        row = await _visible_status(conn, request.match_info["id"], viewer)
        from hub.store.schema import reactions

        ids = list((await conn.execute(sa.select(reactions.c.actor_id).where(
            reactions.c.object_uri == row.uri, reactions.c.kind == kind).order_by(reactions.c.id.desc()).limit(80)
        )).scalars())
        view = View(hub, conn, viewer)
        out = [await view.account(a) for a in [await view.actor(i) for i in ids] if a is not None]
    return json_response(out)


# --- media ----------------------------------------------------------------------------------


async def _store_upload(hub, caller: Caller, file: tuple, *, description: str | None) -> sa.Row:
    filename, content_type, data = file
    ctype = content_type.split(";")[0].strip().lower()
    if ctype not in MEDIA_TYPES:
        raise ApiError(422, f"Validation failed: File content type {ctype!r} is not accepted (images only: "
                            f"{', '.join(MEDIA_TYPES)})")
    if not data:
        raise ApiError(422, "Validation failed: the file is empty")
    if len(data) > hub.cfg.max_attachment_bytes:
        raise ApiError(413, f"File is larger than {hub.cfg.max_attachment_bytes // (1024 * 1024)} MB")
    meta = _image_meta(data)
    if meta is None:
        raise ApiError(422, "Validation failed: the file is not an image of the type it claims")
    digest = await asyncio.to_thread(media.store, hub.cfg, data)
    upload_id = new_id()
    name = (filename or "image").replace("/", "_").replace("\\", "_")[:200] or "image"
    async with hub.db.write() as conn:
        await client_store.put_upload(conn, {"id": upload_id, "actor_id": caller.actor.id, "filename": name,
                                             "content_type": ctype, "size": len(data), "sha256": digest,
                                             "description": (description or None) and description[:1500],
                                             "meta": meta})
        return await client_store.get_upload(conn, upload_id)


def _image_meta(data: bytes) -> dict | None:
    """Width and height from an image's header (PNG, GIF, JPEG, WebP); None if it is none of them."""
    import struct

    size = None
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            size = struct.unpack(">II", data[16:24])
        elif data[:6] in (b"GIF87a", b"GIF89a"):
            size = struct.unpack("<HH", data[6:10])
        elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            chunk = data[12:16]
            if chunk == b"VP8X":
                size = (int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1)
            elif chunk == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                size = ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
            else:
                size = (struct.unpack("<H", data[26:28])[0] & 0x3FFF, struct.unpack("<H", data[28:30])[0] & 0x3FFF)
        elif data[:2] == b"\xff\xd8":
            i = 2
            while i < len(data) - 9:
                if data[i] != 0xFF:
                    i += 1
                    continue
                marker = data[i + 1]
                if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                    h, w = struct.unpack(">HH", data[i + 5:i + 9])
                    size = (w, h)
                    break
                i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
        elif data[4:12] in (b"ftypavif", b"ftypavis"):
            return {}
    except struct.error:
        return None
    if not size or not size[0] or not size[1]:
        return None
    w, h = size
    info = {"width": w, "height": h, "size": f"{w}x{h}", "aspect": round(w / h, 4)}
    return {"original": info, "small": info}


async def upload_media(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("write:media")
    if request.content_length and request.content_length > hub.cfg.max_attachment_bytes + 64 * 1024:
        raise ApiError(413, f"File is larger than {hub.cfg.max_attachment_bytes // (1024 * 1024)} MB")
    params = await params_of(request, files=True, max_file=hub.cfg.max_attachment_bytes)
    file = params.get("file")
    if not isinstance(file, tuple):
        raise ApiError(422, "Validation failed: File can't be blank")
    upload = await _store_upload(hub, caller, file, description=text_param(params, "description") or None)
    return json_response(entities.attachment(hub, upload))


async def _own_upload(hub, caller: Caller, upload_id: str) -> sa.Row:
    async with hub.db.read() as conn:
        row = await client_store.get_upload(conn, upload_id) if is_id(upload_id) else None
    if row is None or row.actor_id != caller.actor.id:
        raise _not_found()
    return row


async def get_media(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("write:media")
    return json_response(entities.attachment(hub, await _own_upload(hub, caller, request.match_info["id"])))


async def update_media(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("write:media")
    row = await _own_upload(hub, caller, request.match_info["id"])
    params = await params_of(request, files=True, max_file=hub.cfg.max_attachment_bytes)
    if "description" in params:
        description = text_param(params, "description")[:1500] or None
        async with hub.db.write() as conn:
            await client_store.update_upload(conn, row.id, {"description": description})
            if row.message_id:
                from hub.store.schema import attachments

                await conn.execute(sa.update(attachments).where(attachments.c.id == row.id).values(
                    description=description))
            row = await client_store.get_upload(conn, row.id)
    return json_response(entities.attachment(hub, row))


# --- timelines ------------------------------------------------------------------------------


async def home_timeline(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("read:statuses")
    params = await params_of(request)
    async with hub.db.read() as conn:
        rows = await client_store.home_timeline(conn, caller.actor.id, limit=limit_of(params), **paging(params))
        data = await View(hub, conn, caller.actor).statuses(rows)
    return json_response(data, headers=link_header(request, [r.id for r in rows], params))


async def public_timeline(request: web.Request) -> web.Response:
    """``GET /api/v1/timelines/public``, and ``/api/v1/timelines/tag/:hashtag`` (public statuses with the
    hashtag, known here)."""
    from hub.text import tag_name

    hub = _hub(request)
    caller = await viewer_of(request, "read:statuses")
    viewer = caller.actor if caller else None
    params = await params_of(request)
    local = True if as_bool(params.get("local")) else (False if as_bool(params.get("remote")) else None)
    tag = tag_name(request.match_info["tag"]) if "tag" in request.match_info else None
    async with hub.db.read() as conn:
        rows = await client_store.public_timeline(conn, local=local, viewer_id=viewer.id if viewer else None,
                                                  only_media=as_bool(params.get("only_media")), tag=tag,
                                                  limit=limit_of(params), **paging(params))
        data = await View(hub, conn, viewer).statuses(rows)
    return json_response(data, headers=link_header(request, [r.id for r in rows], params))


async def favourites(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("read:favourites")
    params = await params_of(request)
    async with hub.db.read() as conn:
        rows = await client_store.favourited_by(conn, caller.actor.id, limit=limit_of(params), **paging(params))
        data = await View(hub, conn, caller.actor).statuses(rows)
    return json_response(data, headers=link_header(request, [r.id for r in rows], params))


# --- conversations --------------------------------------------------------------------------


async def _conversation_json(view: View, state_row: sa.Row, unread: int) -> dict:
    conn = view.conn
    accounts = []
    for p in await conv_store.list_participants(conn, state_row.conversation_id):
        actor = await view.actor(p.id) if p.id != view.viewer.id else None
        if actor is not None and actor.deleted_at is None:
            accounts.append(await view.account(actor))
    last = None
    if state_row.last_message_id:
        message = await msg_store.get_message_by_id(conn, state_row.last_message_id)
        if message is not None and message.deleted_at is None and message.removed_at is None:
            last = await view.status(message)
    return {"id": state_row.conversation_id, "unread": unread > 0, "accounts": accounts, "last_status": last}


async def list_conversations(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("read:statuses")
    params = await params_of(request)
    limit = limit_of(params)
    async with hub.db.read() as conn:
        before = None
        if params.get("max_id"):
            ref = await conv_store.get_state(conn, str(params["max_id"]), caller.actor.id)
            if ref is not None:
                before = (ref.last_message_at, ref.id)
        rows = await conv_store.list_inbox(conn, caller.actor.id, exclude_status="resolved", before=before,
                                           limit=limit)
        unread = await conv_store.unread_counts(conn, rows, caller.account.id)
        view = View(hub, conn, caller.actor)
        out = [await _conversation_json(view, r, unread.get(r.id, 0)) for r in rows]
    async with hub.db.write() as conn:  # a member's reads are in the actor's audit log, from an app as from the web
        await audit(conn, caller.acting, "inbox.list", via="client-api")
    return json_response(out, headers=link_header(request, [r.conversation_id for r in rows], {}))


async def _state_of(conn, caller: Caller, conversation_id: str) -> sa.Row:
    state = await conv_store.get_state(conn, conversation_id, caller.actor.id) if is_id(conversation_id) else None
    if state is None:
        raise _not_found()
    return state


async def read_conversation(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("write:conversations")
    async with hub.db.write() as conn:
        state = await _state_of(conn, caller, request.match_info["id"])
        await conv_store.mark_read(conn, state.id, caller.account.id, dt.datetime.now(dt.timezone.utc))
        await audit(conn, caller.acting, "conversation.read", conversation_id=state.conversation_id, via="client-api")
    async with hub.db.read() as conn:
        rows = await conv_store.list_inbox(conn, caller.actor.id, conversation_id=state.conversation_id, limit=1)
        return json_response(await _conversation_json(View(hub, conn, caller.actor), rows[0], 0))


async def delete_conversation(request: web.Request) -> web.Response:
    """Out of the list until a new message comes: the caller's own state becomes *resolved*
    (the conversation itself, and the other side's copy, stay)."""
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("write:conversations")
    async with hub.db.read() as conn:
        state = await _state_of(conn, caller, request.match_info["id"])
        conversation = await msg_store.get_conversation_by_id(conn, state.conversation_id)
    try:
        await state_service.update(hub, caller.acting, conversation, status="resolved")
    except HubError as exc:
        raise ApiError(exc.status if exc.status in (403, 404) else 422, exc.safe) from None
    return json_response({})


# --- notifications --------------------------------------------------------------------------


async def _notifications(request: web.Request) -> tuple[list, list[dict], dict]:
    """One page of the caller's notifications (v1 and grouped v2 alike): ``(rows, rendered, params)``."""
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("read:notifications")
    params = await params_of(request)
    types = [str(t) for t in as_list(params.get("types"))]
    exclude = [str(t) for t in as_list(params.get("exclude_types"))]
    async with hub.db.read() as conn:
        rows = await client_store.list_notifications(
            conn, caller.actor.id, types=types, exclude=exclude, account_id=params.get("account_id"),
            limit=limit_of(params, 40, 80), **_numeric_paging(params))
        view = View(hub, conn, caller.actor)
        items = [n for n in [await view.notification(r) for r in rows] if n is not None]
    return rows, items, params


async def list_notifications(request: web.Request) -> web.Response:
    rows, items, params = await _notifications(request)
    return json_response(items, headers=link_header(request, [r.id for r in rows], params))


async def get_notification(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("read:notifications")
    async with hub.db.read() as conn:
        row = await client_store.get_notification(conn, caller.actor.id, request.match_info["id"])
        data = await View(hub, conn, caller.actor).notification(row) if row is not None else None
    if data is None:
        raise _not_found()
    return json_response(data)


async def clear_notifications(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("write:notifications")
    async with hub.db.write() as conn:
        await client_store.delete_notifications(conn, caller.actor.id)
    return json_response({})


async def dismiss_notification(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("write:notifications")
    notification_id = request.match_info.get("id")
    if not notification_id:
        notification_id = str((await params_of(request)).get("id") or "")
    async with hub.db.write() as conn:
        row = await client_store.get_notification(conn, caller.actor.id, notification_id)
        if row is None or not await client_store.delete_notifications(conn, caller.actor.id, row.id):
            raise _not_found()
    return json_response({})


async def unread_notifications(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("read:notifications")
    async with hub.db.read() as conn:
        marker = {m.timeline: m for m in await client_store.get_markers(conn, caller.account.id, caller.actor.id)}
        after = marker["notifications"].last_read_id if "notifications" in marker else None
        count = await client_store.count_notifications_after(conn, caller.actor.id, after)
    return json_response({"count": min(count, 1000)})


# --- search ---------------------------------------------------------------------------------


async def search(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("read:search")
    params = await params_of(request)
    q = str(params.get("q") or "").strip()
    kind = params.get("type")
    resolve = as_bool(params.get("resolve"))
    limit = limit_of(params, 20, 40)
    accounts, statuses = [], []
    if q and kind in (None, "", "accounts"):
        accounts = await _search_actors(hub, q, resolve=resolve, limit=limit)
    if q and kind in (None, "", "statuses") and q.startswith(("http://", "https://")):
        row = None
        async with hub.db.read() as conn:
            row = await msg_store.get_message_by_uri(conn, q)
            if row is None:
                from hub.store.schema import messages

                row = (await conn.execute(sa.select(messages).where(messages.c.url == q))).first()
        if row is None and resolve and hub.federation is not None:
            from hub.federation import handlers

            try:
                row = await handlers.ensure_note(hub.federation, q)
            except HubError:
                row = None
        if row is not None:
            async with hub.db.read() as conn:
                if await client_store.can_see(conn, row.id, caller.actor.id, caller.actor.uri):
                    statuses = [row]
    async with hub.db.read() as conn:
        view = View(hub, conn, caller.actor)
        return json_response({"accounts": [await view.account(a) for a in accounts],
                              "statuses": await view.statuses(statuses), "hashtags": []})


# --- what clients ask for at start-up -------------------------------------------------------


async def preferences(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    caller.need("read:accounts")
    return json_response({"posting:default:visibility": "public", "posting:default:sensitive": False,
                          "posting:default:language": None, "reading:expand:media": "default",
                          "reading:expand:spoilers": False, "reading:autoplay:gifs": False})


async def get_markers(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("read:statuses")
    wanted = [str(t) for t in as_list((await params_of(request)).get("timeline"))]
    async with hub.db.read() as conn:
        rows = await client_store.get_markers(conn, caller.account.id, caller.actor.id)
    return json_response({r.timeline: {"last_read_id": r.last_read_id, "version": r.version,
                                       "updated_at": iso(r.updated_at)}
                          for r in rows if not wanted or r.timeline in wanted})


async def set_markers(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("write:statuses")
    params = await params_of(request)
    async with hub.db.write() as conn:
        for name in ("home", "notifications"):
            value = params.get(name)
            last = text_param(value, "last_read_id") if isinstance(value, dict) else None
            if last:
                await client_store.set_marker(conn, caller.account.id, caller.actor.id, name, str(last)[:64])
        rows = await client_store.get_markers(conn, caller.account.id, caller.actor.id)
    return json_response({r.timeline: {"last_read_id": r.last_read_id, "version": r.version,
                                       "updated_at": iso(r.updated_at)} for r in rows})


def empty_list(scope: str | None = None, *, auth: bool = True):
    """An endpoint for a feature Roundtable does not have (yet): an honest empty list."""

    async def handler(request: web.Request) -> web.Response:
        if auth:
            caller = await caller_of(request)
            if scope:
                caller.need(scope)
        return json_response([])

    return handler


async def not_supported(request: web.Request) -> web.Response:
    await caller_of(request)
    raise ApiError(422, "this feature is not supported by Roundtable")


async def unknown_list_item(request: web.Request) -> web.Response:
    await caller_of(request)
    raise _not_found()


async def unknown_list_item_public(request: web.Request) -> web.Response:
    raise _not_found()


async def serve_upload(request: web.Request) -> web.StreamResponse:
    """``GET /media/u/{id}/{name}``: an uploaded file (a status's media, an avatar), by its unguessable id."""
    hub = _hub(request)
    upload_id = request.match_info["id"]
    async with hub.db.read() as conn:
        row = await client_store.get_upload(conn, upload_id) if is_id(upload_id) else None
        message = await msg_store.get_message_by_id(conn, row.message_id) if row is not None and row.message_id else None
    if row is None or (message is not None and (message.deleted_at or message.removed_at)):
        raise web.HTTPNotFound(text="no such file")
    path = media.path_of(hub.cfg, row.sha256)
    if not path.exists():
        raise web.HTTPGone(text="the file is no longer kept")
    return web.FileResponse(path, headers={"Content-Type": row.content_type, "X-Content-Type-Options": "nosniff",
                                           "Cache-Control": "public, max-age=604800, immutable",
                                           "Content-Security-Policy": "default-src 'none'; sandbox",
                                           "Access-Control-Allow-Origin": "*"})


# --- grouped notifications (Mastodon 4.3's /api/v2/notifications) -----------------------------
# Each notification is its own group (``ungrouped-{id}``), which the API allows: clients that
# group (Phanpy, Elk, Ice Cubes) show them one by one.


def _group_of(data: dict) -> dict:
    # Mastodon sends most_recent_notification_id as a number, and Ice Cubes decodes it as one (and pages
    # with it): the id's millisecond time part, which the paging parameters below take back.
    return {"group_key": data["group_key"], "notifications_count": 1, "type": data["type"],
            "most_recent_notification_id": push.number_of(data["id"]), "page_min_id": data["id"],
            "page_max_id": data["id"],
            "latest_page_notification_at": data["created_at"], "sample_account_ids": [data["account"]["id"]],
            "status_id": data["status"]["id"] if data.get("status") else None}


def _numeric_paging(params: dict) -> dict:
    """Paging by notification id, or by the number push payloads and grouped notifications name one with
    (its id's millisecond time part): the id bounds it means."""
    from hub.ids import floor_id_ms

    out = paging(params)
    for key, value in out.items():
        if value and value.isdigit() and len(value) < 16:
            ms = int(value)
            out[key] = floor_id_ms(ms) if key == "max_id" else floor_id_ms(ms + 1)
    return out


async def grouped_notifications(request: web.Request) -> web.Response:
    rows, items, params = await _notifications(request)
    accounts, statuses = {}, {}
    for n in items:
        accounts[n["account"]["id"]] = n["account"]
        if n.get("status"):
            statuses[n["status"]["id"]] = n["status"]
    return json_response({"accounts": list(accounts.values()), "statuses": list(statuses.values()),
                          "notification_groups": [_group_of(n) for n in items]},
                         headers=link_header(request, [r.id for r in rows], params))


def _ungrouped_id(group_key: str) -> str:
    return group_key.removeprefix("ungrouped-")


async def grouped_notification(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("read:notifications")
    async with hub.db.read() as conn:
        row = await client_store.get_notification(conn, caller.actor.id, _ungrouped_id(request.match_info["key"]))
        data = await View(hub, conn, caller.actor).notification(row) if row is not None else None
    if data is None:
        raise _not_found()
    return json_response({"accounts": [data["account"]], "statuses": [data["status"]] if data["status"] else [],
                          "notification_groups": [_group_of(data)]})


async def dismiss_group(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("write:notifications")
    async with hub.db.write() as conn:
        if not await client_store.delete_notifications(conn, caller.actor.id, _ungrouped_id(request.match_info["key"])):
            raise _not_found()
    return json_response({})


async def notifications_policy(request: web.Request) -> web.Response:
    """Nothing is filtered into notification requests here: every notification is accepted."""
    caller = await caller_of(request)
    caller.need("read:notifications")
    v2 = request.path.startswith("/api/v2/")
    policy = ({"for_not_following": "accept", "for_not_followers": "accept", "for_new_accounts": "accept",
               "for_private_mentions": "accept", "for_limited_accounts": "accept"} if v2 else
              {"filter_not_following": False, "filter_not_followers": False, "filter_new_accounts": False,
               "filter_private_mentions": False})
    return json_response({**policy, "summary": {"pending_requests_count": 0, "pending_notifications_count": 0}})


def _tag_name(value: str) -> str:
    """A hashtag named in a path, as it is kept; 404 when it cannot be one."""
    from hub.text import find_hashtags, tag_name

    name = tag_name(value)
    if find_hashtags("#" + name) != [name]:
        raise ApiError(404, "Record not found: not a hashtag")
    return name


def _tag_json(hub, name: str, following: bool) -> dict:
    from urllib.parse import quote

    return {"name": name, "url": f"{hub.cfg.base_url}/tags/{quote(name)}", "history": [], "following": following}


async def tag(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await viewer_of(request, "read:statuses")
    name = _tag_name(request.match_info["tag"])
    following = False
    if caller is not None and caller.actor is not None:
        async with hub.db.read() as conn:
            following = await client_store.follows_tag(conn, caller.actor.id, name)
    return json_response(_tag_json(hub, name, following))


async def follow_tag(request: web.Request) -> web.Response:
    """``POST /api/v1/tags/:name/follow`` (and ``unfollow``): public posts with it come into the home timeline."""
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("write:follows")
    name = _tag_name(request.match_info["tag"])
    follow = request.match_info["action"] == "follow"
    async with hub.db.write() as conn:
        if follow and await client_store.count_followed_tags(conn, caller.actor.id) >= 1000:
            raise ApiError(422, "Validation failed: at most 1000 followed hashtags")
        await client_store.follow_tag(conn, caller.actor.id, name, follow=follow)
    return json_response(_tag_json(hub, name, follow))


async def followed_tags(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("read:follows")
    async with hub.db.read() as conn:
        names = await client_store.followed_tags_of(conn, caller.actor.id, limit=limit_of(
            await params_of(request), default=100, maximum=200))
    return json_response([_tag_json(hub, n, True) for n in names])


async def register(request: web.Request) -> web.Response:
    """``POST /api/v1/accounts``: sign up from an app (with the app's own token, as Mastodon asks),
    under the same rules as the sign-up page (open, or by invitation: ``invite_code``)."""
    hub = _hub(request)
    caller = await caller_of(request, user=False)
    caller.need("write:accounts")
    params = await params_of(request)
    if not as_bool(params.get("agreement")):
        raise ApiError(422, "Validation failed: you must agree to the server's rules (agreement=true)")
    username, password = str(params.get("username") or ""), str(params.get("password") or "")
    if not username or not password:
        raise ApiError(422, "Validation failed: username and password are required")
    from hub import sessions

    try:
        account, _ = await sessions.sign_up(hub, username=username, password=password,
                                            email=str(params.get("email") or "") or None, name=None,
                                            invitation=str(params.get("invite_code") or "") or None,
                                            user_agent=request.headers.get("User-Agent"), session=False)
    except HubError as exc:
        raise ApiError(403 if exc.status == 403 else 422, f"Validation failed: {exc.safe}"
                       if exc.status != 403 else exc.safe) from None
    async with hub.db.read() as conn:
        actor = await actor_store.get_local_actor(conn, account.username)
        app = await client_store.get_app(conn, caller.token.app_id)
    from hub.mastodon import oauth

    scopes = caller.token.scopes.split()
    data = await oauth._issue(hub, app=app, account_id=account.id, actor_id=actor.id, scopes=scopes)
    return json_response(data)


async def many_statuses(request: web.Request) -> web.Response:
    """``GET /api/v1/statuses?id[]=...``: those the caller may see, in the order asked."""
    hub = _hub(request)
    caller = await viewer_of(request, "read:statuses")
    viewer = caller.actor if caller else None
    ids = [str(i) for i in as_list((await params_of(request)).get("id"))][:40]
    async with hub.db.read() as conn:
        rows = []
        for i in ids:
            try:
                rows.append(await _visible_status(conn, i, viewer))
            except ApiError:
                continue
        return json_response(await View(hub, conn, viewer).statuses(rows))


async def many_accounts(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await viewer_of(request, "read:accounts")
    ids = [str(i) for i in as_list((await params_of(request)).get("id"))][:40]
    async with hub.db.read() as conn:
        view = View(hub, conn, caller.actor if caller else None)
        out = []
        for i in ids:
            try:
                out.append(await view.account(await _actor(conn, i)))
            except ApiError:
                continue
    return json_response(out)


async def bookmarks_list(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("read:bookmarks")
    params = await params_of(request)
    async with hub.db.read() as conn:
        rows = await client_store.bookmarked_by(conn, caller.actor.id, limit=limit_of(params), **paging(params))
        data = await View(hub, conn, caller.actor).statuses(rows)
    return json_response(data, headers=link_header(request, [r.id for r in rows], params))


async def create_report(request: web.Request) -> web.Response:
    """``POST /api/v1/reports``: kept for this instance's administrators (``/admin/reports``); with
    ``forward`` and a remote account, also sent to its server as a ``Flag`` from this instance's own
    actor (as Mastodon does: the reporter is not named to the other server)."""
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("write:reports")
    params = await params_of(request)
    async with hub.db.read() as conn:
        target = await _actor(conn, text_param(params, "account_id"))
        statuses = []
        for i in [str(x) for x in as_list(params.get("status_ids"))][:20]:
            try:
                statuses.append(await _visible_status(conn, i, caller.actor))
            except ApiError:
                raise ApiError(422, f"Validation failed: no status {i} of that account") from None
        if any(s.actor_id != target.id for s in statuses):
            raise ApiError(422, "Validation failed: the statuses must be the reported account's")
    comment = text_param(params, "comment")[:1000]
    category = text_param(params, "category") or "other"
    if category not in ("spam", "legal", "violation", "other"):
        raise ApiError(422, "Validation failed: category must be spam, legal, violation or other")
    from hub.store import moderation as moderation_store

    forward = as_bool(params.get("forward")) and not target.local and hub.federation is not None
    async with hub.db.write() as conn:
        report_id = await moderation_store.put_report(conn, uri=None, reporter_uri=caller.actor.uri,
                                                      target_uris=[target.uri, *[s.uri for s in statuses]],
                                                      content=comment or None,
                                                      raw={"category": category, "local": True, "forwarded": forward})
        if forward:
            from hub.store.jobs import job_row, put_jobs

            await put_jobs(conn, [job_row("outbox.publish", {
                "verb": "flag", "activity_id": new_id(), "target_id": target.id, "content": comment,
                "objects": [target.uri, *[s.uri for s in statuses if not s.local]]})])
        view = View(hub, conn, caller.actor)
        account = await view.account(target)
    if forward:
        hub.wake()
    return json_response({"id": report_id, "action_taken": False, "action_taken_at": None, "category": category,
                          "comment": comment, "forwarded": forward, "created_at": iso(dt.datetime.now(dt.timezone.utc)),
                          "status_ids": [s.id for s in statuses], "rule_ids": [], "target_account": account})


async def group_accounts(request: web.Request) -> web.Response:
    hub = _hub(request)
    caller = await caller_of(request)
    caller.need("read:notifications")
    async with hub.db.read() as conn:
        row = await client_store.get_notification(conn, caller.actor.id, _ungrouped_id(request.match_info["key"]))
        who = await actor_store.get_actor_by_id(conn, row.from_actor_id) if row is not None else None
        if who is None:
            raise _not_found()
        return json_response([await View(hub, conn, caller.actor).account(who)])


async def change_policy(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    caller.need("write:notifications")
    raise ApiError(422, "Notification filtering is not offered here: every notification is accepted")


async def _edit_media(hub, caller: Caller, row: sa.Row, params: dict) -> None:
    """An edit's ``media_ids`` (files kept, removed, added from uploads) and ``media_attributes[]``
    (new descriptions), written before the edit so that its ``Update`` carries them."""
    from hub.store import bridges as bridge_store
    from hub.store.schema import attachments

    if "media_ids" not in params and "media_attributes" not in params:
        return
    async with hub.db.write() as conn:
        current = (await bridge_store.attachments_of(conn, [row.id]))[row.id]
        have = {a.id for a in current}
        if "media_ids" in params:
            wanted = [str(i) for i in as_list(params.get("media_ids"))]
            if len(wanted) > MAX_MEDIA:
                raise ApiError(422, f"Validation failed: a status can carry at most {MAX_MEDIA} files")
            added = []
            for i in wanted:
                if i in have:
                    continue
                upload = await client_store.get_upload(conn, i) if is_id(i) else None
                if upload is None or upload.actor_id != caller.actor.id or upload.message_id is not None:
                    raise ApiError(422, f"Validation failed: no unattached media with id {i!r}")
                added.append(upload)
            gone = [a.id for a in current if a.id not in wanted]
            if gone:
                await conn.execute(sa.delete(attachments).where(attachments.c.id.in_(gone)))
            for upload in added:
                await bridge_store.put_attachment(conn, message_id=row.id, filename=upload.filename,
                                                  content_type=upload.content_type, size=upload.size,
                                                  sha256=upload.sha256, attachment_id=upload.id,
                                                  description=upload.description)
                await client_store.update_upload(conn, upload.id, {"message_id": row.id})
        for attr in as_list(params.get("media_attributes")):
            if isinstance(attr, dict) and "description" in attr:
                target = text_param(attr, "id")
                description = text_param(attr, "description")[:1500] or None
                await conn.execute(sa.update(attachments).where(attachments.c.id == target,
                                                                attachments.c.message_id == row.id)
                                   .values(description=description))

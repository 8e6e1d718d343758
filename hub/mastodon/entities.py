"""Mastodon's entities (docs.joinmastodon.org/entities) from Roundtable's rows.

Ids are strings (our sortable ids), times ISO 8601 with milliseconds, and a
field Mastodon defines is present (``null`` when unknown) rather than missing:
clients such as toot and Tusky parse strictly. A ``View`` renders many rows
for one viewer with one connection, caching the actors it looks up.
"""

from __future__ import annotations

from urllib.parse import quote

import sqlalchemy as sa

from hub import media
from hub.context import Hub
from hub.mastodon.core import iso
from hub.store import actors as actor_store
from hub.store import bridges as bridge_store
from hub.store import mastodon as client_store
from hub.store import messages as msg_store
from hub.store import social
from hub.store.base import Conn

VISIBILITY_OUT = {"public": "public", "unlisted": "unlisted", "followers": "private", "direct": "direct"}
VISIBILITY_IN = {"public": "public", "unlisted": "unlisted", "private": "followers", "direct": "direct"}
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/avif")


def acct_of(hub: Hub, actor: sa.Row) -> str:
    return actor.username if actor.local else f"{actor.username}@{actor.domain}"


def media_type(content_type: str) -> str:
    ctype = content_type.split(";")[0].strip().lower()
    for prefix, kind in (("image/", "image"), ("video/", "video"), ("audio/", "audio")):
        if ctype.startswith(prefix):
            return kind
    return "unknown"


class View:
    def __init__(self, hub: Hub, conn: Conn, viewer: sa.Row | None = None):
        self.hub, self.conn, self.viewer = hub, conn, viewer
        self._actors: dict[str, sa.Row | None] = {}
        self._by_uri: dict[str, sa.Row | None] = {}
        self._accounts: dict[tuple[str, bool], dict] = {}  # a page names the same authors again and again
        self._tags: dict[str, list[str]] = {}  # the hashtags of the statuses being rendered

    async def actor(self, actor_id: str) -> sa.Row | None:
        if actor_id not in self._actors:
            self._actors[actor_id] = await actor_store.get_actor_by_id(self.conn, actor_id)
        return self._actors[actor_id]

    async def actor_by_uri(self, uri: str) -> sa.Row | None:
        if uri not in self._by_uri:
            self._by_uri[uri] = await actor_store.get_actor_by_uri(self.conn, uri)
        return self._by_uri[uri]

    # --- Account ---------------------------------------------------------------------------

    async def account(self, actor: sa.Row, *, source: bool = False) -> dict:
        key = (actor.id, source)
        if key not in self._accounts:
            self._accounts[key] = await self._account(actor, source=source)
        return self._accounts[key]

    async def _account(self, actor: sa.Row, *, source: bool) -> dict:
        hub = self.hub
        avatar = actor.icon_url or f"{hub.cfg.base_url}/static/avatar.png"
        header = (actor.settings or {}).get("header_url") if actor.local else actor.image_url
        header = header or f"{hub.cfg.base_url}/static/header.png"
        fields = [
            {"name": f.get("name", ""), "value": f.get("value", ""),
             "verified_at": f.get("verified_at") if isinstance(f, dict) else None}
            for f in (actor.fields or []) if isinstance(f, dict)
        ]
        statuses = await msg_store.count_messages_by_actor(self.conn, actor.id,
                                                           visibilities=("public", "unlisted", "followers", "direct"))
        last = await client_store.last_status_at(self.conn, actor.id)
        created = actor.published_at or actor.created_at
        moved = None
        if actor.moved_to:
            target = await self.actor_by_uri(actor.moved_to)
            if target is not None and target.id != actor.id:
                moved = await self.account(target)
        data = {
            "id": actor.id,
            "username": actor.username,
            "acct": acct_of(hub, actor),
            "display_name": actor.name or "",
            "locked": bool(actor.manually_approves_followers),
            "bot": actor.type in ("Service", "Application"),
            "discoverable": bool(actor.discoverable),
            "indexable": bool(actor.discoverable),
            "group": actor.type == "Group",
            "created_at": iso(created.replace(hour=0, minute=0, second=0, microsecond=0)),
            "note": actor.summary or "",
            "url": actor.url or actor.uri,
            "uri": actor.uri,
            "avatar": avatar,
            "avatar_static": avatar,
            "header": header,
            "header_static": header,
            "followers_count": await social.count_follows(self.conn, actor.id, followers=True),
            "following_count": await social.count_follows(self.conn, actor.id, followers=False),
            "statuses_count": statuses,
            "last_status_at": last.date().isoformat() if last else None,
            "hide_collections": False,
            "noindex": not actor.discoverable,
            "emojis": [],
            "roles": [],
            "fields": fields,
            "moved": moved,
            "suspended": False,
            "limited": False,
            # Roundtable: customers and organizations are both accounts here; which one this is
            "roundtable": {"type": actor.type, "network": actor.bridge_network or "activitypub"},
        }
        if source:
            data["source"] = {
                "note": _plain(actor.summary or ""),
                "fields": [{"name": f["name"], "value": _plain(f["value"]), "verified_at": f["verified_at"]}
                           for f in fields],
                "privacy": "public",
                "sensitive": False,
                "language": None,
                "follow_requests_count": len(await social.list_pending_follow_requests(self.conn, actor.id)),
                "hide_collections": False,
                "discoverable": bool(actor.discoverable),
                "indexable": bool(actor.discoverable),
            }
        return data

    # --- Status ----------------------------------------------------------------------------

    async def statuses(self, rows: list[sa.Row]) -> list[dict]:
        uris = [r.uri for r in rows]
        counts = await client_store.reaction_counts(self.conn, uris)
        replies = await client_store.reply_counts(self.conn, uris)
        mine = await client_store.reactions_of(self.conn, self.viewer.id, uris) if self.viewer is not None else {}
        kept = (await client_store.bookmarked_of(self.conn, self.viewer.id, [r.id for r in rows])
                if self.viewer is not None else set())
        files = await bridge_store.attachments_of(self.conn, [r.id for r in rows])
        self._tags = await msg_store.tags_of(self.conn, [r.id for r in rows])
        out = []
        for row in rows:
            out.append(await self._status(row, counts, replies, mine, files.get(row.id, []), row.id in kept))
        return out

    async def status(self, row: sa.Row) -> dict:
        return (await self.statuses([row]))[0]

    async def _status(self, row, counts, replies, mine, files, bookmarked: bool = False) -> dict:
        author = await self.actor(row.actor_id)
        parent = await msg_store.get_message_by_uri(self.conn, row.in_reply_to_uri) if row.in_reply_to_uri else None
        mentions = []
        for uri in row.mention_uris or []:
            who = await self.actor_by_uri(uri)
            if who is not None:
                mentions.append({"id": who.id, "username": who.username, "url": who.url or who.uri,
                                 "acct": acct_of(self.hub, who)})
        conversation = await msg_store.get_conversation_by_id(self.conn, row.conversation_id) \
            if row.conversation_id else None
        application = None
        if row.local and row.account_id:
            application = {"name": "Roundtable", "website": None}
        return {
            "id": row.id,
            "uri": row.uri,
            "url": row.url or row.uri,
            "created_at": iso(row.published_at),
            "edited_at": iso(row.edited_at),
            "account": await self.account(author),
            "content": row.content_html or "",
            "visibility": VISIBILITY_OUT.get(row.visibility, "direct"),
            "sensitive": bool(row.sensitive),
            "spoiler_text": row.summary or "",
            "media_attachments": [attachment(self.hub, f) for f in files],
            "application": application,
            "mentions": mentions,
            "tags": [{"name": t, "url": f"{self.hub.cfg.base_url}/tags/{quote(t)}"}
                     for t in self._tags.get(row.id, [])],
            "emojis": [],
            "reblogs_count": counts.get((row.uri, "announce"), 0),
            "favourites_count": counts.get((row.uri, "like"), 0),
            "replies_count": replies.get(row.uri, 0),
            "in_reply_to_id": parent.id if parent is not None else None,
            "in_reply_to_account_id": parent.actor_id if parent is not None else None,
            "reblog": None,
            "poll": None,
            "card": None,
            "language": row.language,
            "text": None,
            "favourited": "like" in mine.get(row.uri, ()) if self.viewer is not None else None,
            "reblogged": "announce" in mine.get(row.uri, ()) if self.viewer is not None else None,
            "muted": False if self.viewer is not None else None,
            "bookmarked": bookmarked if self.viewer is not None else None,
            "pinned": False if self.viewer is not None and row.actor_id == self.viewer.id else None,
            "filtered": [],
            # Roundtable: the conversation (context) this message belongs to and the network it came through
            "roundtable": {"conversation": conversation.uri if conversation is not None else None,
                           "network": row.network},
        }

    async def reblog(self, reaction: sa.Row, original: sa.Row) -> dict:
        inner = await self.status(original)
        booster = await self.actor(reaction.actor_id)
        return {**inner, "id": reaction.id, "uri": reaction.uri, "url": reaction.uri,
                "created_at": iso(reaction.created_at), "account": await self.account(booster), "content": "",
                "media_attachments": [], "mentions": [], "reblogs_count": 0, "favourites_count": 0,
                "replies_count": 0, "in_reply_to_id": None, "in_reply_to_account_id": None, "reblog": inner,
                "favourited": False, "reblogged": True, "edited_at": None}

    # --- Notification, Relationship, Conversation ------------------------------------------

    async def notification(self, row: sa.Row) -> dict | None:
        who = await self.actor(row.from_actor_id)
        if who is None:
            return None
        status = None
        if row.message_id:
            message = await msg_store.get_message_by_id(self.conn, row.message_id)
            if message is None or message.deleted_at is not None or message.removed_at is not None:
                return None
            status = await self.status(message)
        return {"id": row.id, "type": row.type, "created_at": iso(row.created_at), "group_key": f"ungrouped-{row.id}",
                "account": await self.account(who), "status": status, "report": None}

    async def relationship(self, target: sa.Row) -> dict:
        me = self.viewer
        out_follow = await social.get_follow(self.conn, follower_id=me.id, followee_id=target.id)
        in_follow = await social.get_follow(self.conn, follower_id=target.id, followee_id=me.id)
        mute = await client_store.get_mute(self.conn, me.id, target.id)
        return {
            "id": target.id,
            "following": out_follow is not None and out_follow.state == "accepted",
            "showing_reblogs": True,
            "notifying": False,
            "languages": None,
            "followed_by": in_follow is not None and in_follow.state == "accepted",
            "blocking": await social.get_block(self.conn, blocker_id=me.id, blocked_id=target.id) is not None,
            "blocked_by": await social.get_block(self.conn, blocker_id=target.id, blocked_id=me.id) is not None,
            "muting": mute is not None,
            "muting_notifications": bool(mute is not None and mute.notifications),
            "requested": out_follow is not None and out_follow.state == "pending",
            "requested_by": in_follow is not None and in_follow.state == "pending",
            "domain_blocking": False,
            "endorsed": False,
            "note": "",
        }


def attachment(hub: Hub, row: sa.Row) -> dict:
    """A stored file (``attachments`` or ``media_uploads`` row) as a MediaAttachment."""
    ctype = row.content_type
    kind = media_type(ctype)
    if getattr(row, "remote_url", None) and not row.sha256:
        url = row.remote_url
    elif hasattr(row, "message_id") and hasattr(row, "meta"):  # an upload
        url = f"{hub.cfg.base_url}/media/u/{row.id}/{_quote(row.filename)}"
    else:
        url = media.url_of(hub.cfg, row.id, row.filename)
    meta = getattr(row, "meta", None) or {}
    return {"id": row.id, "type": kind, "url": url, "preview_url": url if kind == "image" else None,
            "remote_url": getattr(row, "remote_url", None), "preview_remote_url": None, "text_url": None,
            "meta": meta, "description": row.description, "blurhash": None}


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name)


def _plain(html: str) -> str:
    from hub import text as textmod

    return textmod.html_to_text(html)

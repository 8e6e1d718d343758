"""What a local actor does: post, edit, delete, follow, block, react.

Each action changes our own state in one transaction and, in the same
transaction, queues an ``outbox.publish`` job naming what happened. The
network adapters turn that job into their own wire form (the ActivityPub
adapter renders the activity and queues one delivery per inbox), so this
module never knows how anything travels. Recipients on this same hub are
served at once from here: a local follower's timeline gets the note in the
same transaction that creates it.
"""

from __future__ import annotations

import sqlalchemy as sa

from hub import addressing
from hub import text as textmod
from hub.context import Hub
from hub.errors import Forbidden, NotFound, UsageError
from hub.ids import new_id, new_ids
from hub.inbox.conversations import message_changed
from hub.store import actors as actor_store
from hub.store import bridges as bridge_store
from hub.store import mastodon as client_store
from hub.store import messages as msg_store
from hub.store import social
from hub.store.base import Conn, utcnow
from hub.store.jobs import job_row, put_jobs

MAX_TEXT = 5000


async def queue_publish(conn: Conn, hub: Hub, verb: str, **payload) -> None:
    await put_jobs(conn, [job_row("outbox.publish", {"verb": verb, **payload})])


def handle_of(actor: sa.Row, hub: Hub) -> str:
    domain = actor.domain if not actor.local else hub.cfg.domain
    return f"{actor.username}@{domain}"


async def post_note(
    hub: Hub,
    author: sa.Row,
    text: str,
    *,
    visibility: str = "public",
    recipients: list[sa.Row] = (),
    in_reply_to: sa.Row | None = None,
    summary: str | None = None,
    files: list = (),
) -> sa.Row:
    """Publish a note. ``recipients`` are resolved actor rows to mention/address.

    A reply copies its parent's conversation (``context``) and addresses the
    parent's author. A direct message names every addressee in its text as
    ``@user@host`` (Mastodon notifies only for a mention it can see).
    """
    text = (text or "").strip()
    if not text and not files:
        raise UsageError("a note needs some text")
    if len(text) > MAX_TEXT:
        raise UsageError(f"a note can have at most {MAX_TEXT} characters")
    if visibility not in addressing.VISIBILITIES:
        raise UsageError(f"invalid visibility {visibility!r}: use {', '.join(addressing.VISIBILITIES)}")
    mentioned = {r.uri: r for r in recipients}
    async with hub.db.write() as conn:
        if in_reply_to is not None and in_reply_to.actor_id != author.id:
            parent_author = await actor_store.get_actor_by_id(conn, in_reply_to.actor_id)
            if parent_author is not None:
                mentioned.setdefault(parent_author.uri, parent_author)
        for target in mentioned.values():
            if await social.blocked_either_way(conn, author.id, target.id):
                raise Forbidden(f"cannot address {handle_of(target, hub)}: one of you blocks the other")
        handles = {}
        for r in mentioned.values():
            handles[handle_of(r, hub).lower()] = r.url or r.uri
            if r.local:
                handles[r.username.lower()] = r.url or r.uri
        missing = [
            "@" + handle_of(r, hub)
            for r in mentioned.values()
            if ("@" + handle_of(r, hub)).lower() not in text.lower()
        ]
        if missing:
            text = " ".join(missing) + " " + text
        to, cc = addressing.audience(visibility, followers_uri=author.followers_uri, mentions=list(mentioned))
        message_id = new_id()
        inherit = in_reply_to is not None and in_reply_to.conversation_id
        if inherit:
            # Someone outside a customer's conversation (a published one, say) answering in it starts a
            # thread of their own: only participants write in a conversation.
            from hub.store import conversations as conv_store

            participants = await conv_store.list_participants(conn, in_reply_to.conversation_id)
            inherit = not participants or any(p.id == author.id for p in participants)
        if inherit:
            conversation_id = in_reply_to.conversation_id
        else:
            conv_id = new_id()
            conv = await msg_store.ensure_conversation(
                conn, uri=hub.uris.conversation(conv_id), owner_id=author.id, local=True, conversation_id=conv_id
            )
            conversation_id = conv.id
        now = utcnow()
        uri = hub.uris.message(message_id)
        await msg_store.put_message(
            conn,
            {
                "id": message_id,
                "uri": uri,
                "url": uri,
                "actor_id": author.id,
                "conversation_id": conversation_id,
                "in_reply_to_uri": in_reply_to.uri if in_reply_to is not None else None,
                "content_html": textmod.plain_to_html(text, handles, f"{hub.cfg.base_url}/tags"),
                "content_text": text,
                "summary": summary or None,
                "sensitive": bool(summary),
                "visibility": visibility,
                "to_uris": to,
                "cc_uris": cc,
                "mention_uris": list(mentioned),
                "local": True,
                "network": "activitypub",
                "published_at": now,
            },
        )
        for (f, digest), file_id in zip(files, new_ids(len(files)), strict=True):  # ``(media.NewFile, sha256)``
            await bridge_store.put_attachment(conn, message_id=message_id, filename=f.filename,
                                              attachment_id=f.file_id or file_id, description=f.description,
                                              content_type=f.content_type, size=len(f.data), sha256=digest)
        await _deliver_locally(conn, author, message_id, visibility, list(mentioned.values()))
        await queue_publish(conn, hub, "create", message_id=message_id, activity_id=new_id())
        row = await msg_store.get_message_by_id(conn, message_id)
    hub.wake()
    return row


async def _deliver_locally(conn: Conn, author: sa.Row, message_id: str, visibility: str, mentioned: list[sa.Row]) -> None:
    """Timeline entries for recipients on this hub: mentioned actors, and followers."""
    blocked = await social.list_blocked_ids(conn, author.id)
    addressed = [r.id for r in mentioned if r.local and r.id not in blocked and r.id != author.id]
    if addressed:
        await msg_store.put_timeline_entries(conn, message_id, addressed, reason="addressed")
        await client_store.add_notifications(conn, addressed, "mention", author.id, message_id)
    if visibility != "direct":
        followers = [i for i in await social.list_local_followers_of(conn, author.id) if i not in blocked]
        if followers:
            await msg_store.put_timeline_entries(conn, message_id, followers, reason="follow")


async def get_own_message(hub: Hub, author: sa.Row, uri: str) -> sa.Row:
    async with hub.db.read() as conn:
        row = await msg_store.get_message_by_uri(conn, uri)
    if row is None or row.deleted_at is not None:
        raise NotFound(f"no note {uri}")
    if row.actor_id != author.id:
        raise Forbidden("only the author can change a note")
    return row


async def edit_note(hub: Hub, author: sa.Row, message: sa.Row, text: str) -> sa.Row:
    text = (text or "").strip()
    if not text:
        raise UsageError("a note needs some text")
    if len(text) > MAX_TEXT:
        raise UsageError(f"a note can have at most {MAX_TEXT} characters")
    async with hub.db.write() as conn:
        mentioned = await actor_store.get_actors_by_uris(conn, list(message.mention_uris or []))
        handles = {}
        for r in mentioned:
            handles[handle_of(r, hub).lower()] = r.url or r.uri
            if r.local:
                handles[r.username.lower()] = r.url or r.uri
        await msg_store.update_message(
            conn,
            message.id,
            {
                "content_text": text,
                "content_html": textmod.plain_to_html(text, handles, f"{hub.cfg.base_url}/tags"),
                "edited_at": utcnow(),
            },
        )
        await queue_publish(conn, hub, "update", message_id=message.id, activity_id=new_id())
        await message_changed(conn, hub, "edit", message.id)
        row = await msg_store.get_message_by_id(conn, message.id)
    hub.wake()
    return row


async def delete_note(hub: Hub, author: sa.Row, message: sa.Row) -> None:
    async with hub.db.write() as conn:
        await msg_store.mark_message_deleted(conn, message.id)
        await queue_publish(conn, hub, "delete", message_id=message.id, activity_id=new_id())
        await message_changed(conn, hub, "delete", message.id)
    hub.wake()


# --- follows -----------------------------------------------------------------------


async def follow(hub: Hub, follower: sa.Row, target: sa.Row) -> sa.Row:
    """Follow ``target``; local targets answer at once, remote ones by Accept."""
    if follower.id == target.id:
        raise UsageError("an actor cannot follow itself")
    if target.type == "Application":
        raise UsageError("the instance actor cannot be followed")
    async with hub.db.write() as conn:
        if await social.blocked_either_way(conn, follower.id, target.id):
            raise Forbidden("cannot follow: one of you blocks the other")
        existing = await social.get_follow(conn, follower_id=follower.id, followee_id=target.id)
        if existing is not None and existing.state == "accepted":
            return existing
        # A new Follow each time: a request that was lost can be sent again
        # (peers match the Accept by the Follow's id or by actor and object).
        uri = hub.uris.activity(new_id())
        if target.local:
            state = "pending" if target.manually_approves_followers else "accepted"
            row = await social.put_follow(conn, follower_id=follower.id, followee_id=target.id, state=state, uri=uri)
            await client_store.notify_follow(conn, row)
            return row
        row = await social.put_follow(conn, follower_id=follower.id, followee_id=target.id, state="pending", uri=uri)
        await queue_publish(
            conn, hub, "follow", follower_id=follower.id, followee_id=target.id, activity_uri=uri
        )
    hub.wake()
    return row


async def unfollow(hub: Hub, follower: sa.Row, target: sa.Row) -> None:
    async with hub.db.write() as conn:
        existing = await social.get_follow(conn, follower_id=follower.id, followee_id=target.id)
        if existing is None:
            raise NotFound("not following")
        await social.delete_follow(conn, existing.id)
        if not target.local:
            await queue_publish(
                conn, hub, "undo_follow", follower_id=follower.id, followee_id=target.id,
                follow_uri=existing.uri, activity_id=new_id(),
            )
    hub.wake()


async def answer_follow_request(hub: Hub, followee: sa.Row, follower: sa.Row, *, accept: bool) -> None:
    async with hub.db.write() as conn:
        existing = await social.get_follow(conn, follower_id=follower.id, followee_id=followee.id)
        if existing is None:
            raise NotFound("no such follow request")
        if accept:
            await social.accept_follow(conn, existing.id)
        else:
            await social.delete_follow(conn, existing.id)
        if not follower.local:
            await queue_publish(
                conn, hub, "accept_follow" if accept else "reject_follow",
                follower_id=follower.id, followee_id=followee.id, follow_uri=existing.uri, activity_id=new_id(),
            )
    hub.wake()


# --- blocks --------------------------------------------------------------------------


async def block(hub: Hub, blocker: sa.Row, target: sa.Row) -> None:
    """Block: follows end both ways, nothing is delivered either way, the server is told."""
    if blocker.id == target.id:
        raise UsageError("an actor cannot block itself")
    async with hub.db.write() as conn:
        if await social.get_block(conn, blocker_id=blocker.id, blocked_id=target.id) is not None:
            return
        uri = hub.uris.activity(new_id())
        await social.put_block(conn, blocker_id=blocker.id, blocked_id=target.id, uri=uri)
        await social.delete_follows_between(conn, blocker.id, target.id)
        if not target.local:
            await queue_publish(conn, hub, "block", blocker_id=blocker.id, blocked_id=target.id, activity_uri=uri)
    hub.wake()


async def unblock(hub: Hub, blocker: sa.Row, target: sa.Row) -> None:
    async with hub.db.write() as conn:
        existing = await social.get_block(conn, blocker_id=blocker.id, blocked_id=target.id)
        if existing is None:
            raise NotFound("not blocking")
        await social.delete_block(conn, blocker_id=blocker.id, blocked_id=target.id)
        if not target.local:
            await queue_publish(
                conn, hub, "undo_block", blocker_id=blocker.id, blocked_id=target.id,
                block_uri=existing.uri, activity_id=new_id(),
            )
    hub.wake()


# --- reactions -------------------------------------------------------------------------


async def react(hub: Hub, actor: sa.Row, message: sa.Row, kind: str, *, undo: bool = False) -> None:
    """Like or announce (boost) a message, or take it back."""
    if kind not in ("like", "announce"):
        raise UsageError(f"unknown reaction {kind!r}")
    if kind == "announce" and not addressing.visible_to_anyone(message.visibility):
        raise Forbidden("only public or unlisted notes can be boosted")
    async with hub.db.write() as conn:
        author = await actor_store.get_actor_by_id(conn, message.actor_id)
        if await social.blocked_either_way(conn, actor.id, author.id):
            raise Forbidden("cannot react: one of you blocks the other")
        existing = await social.get_reaction(conn, kind=kind, actor_id=actor.id, object_uri=message.uri)
        if undo:
            if existing is None:
                raise NotFound(f"no {kind} to take back")
            await social.delete_reaction(conn, existing.id)
            await queue_publish(
                conn, hub, "undo_" + kind, actor_id=actor.id, message_id=message.id,
                reaction_uri=existing.uri, activity_id=new_id(),
            )
        else:
            if existing is not None:
                return
            uri = hub.uris.activity(new_id())
            await social.put_reaction(conn, uri=uri, kind=kind, actor_id=actor.id, object_uri=message.uri)
            await client_store.notify_reaction(conn, kind, actor.id, message.uri)
            await queue_publish(conn, hub, kind, actor_id=actor.id, message_id=message.id, activity_uri=uri)
    hub.wake()

"""``ap.inbound``: the side effects of an accepted activity (``handle_<activity>``).

Runs as a durable job after the inbox answered 202; every handler is
idempotent (unique keys everywhere), so a job run twice after a crash
changes nothing the second time. The signer was checked at the inbox; here
each handler checks that the actor may do what it asks (only the author
edits or deletes a note, only the followee accepts a follow...).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import sqlalchemy as sa

from hub import addressing
from hub import text as textmod
from hub.errors import BadRequest, HubError
from hub.federation import discovery
from hub.federation import documents as docs
from hub.ids import new_id, new_ids
from hub.inbox.conversations import message_changed
from hub.jobs import DONE, Outcome
from hub.store import actors as actor_store
from hub.store import bridges as bridge_store
from hub.store import jobs as job_store
from hub.store import mastodon as client_store
from hub.store import messages as msg_store
from hub.store import social
from hub.store.base import Conn, utcnow

if TYPE_CHECKING:
    from hub.federation import Federation

log = logging.getLogger(__name__)


def _ignored(reason: str) -> Outcome:
    return Outcome("done", error=f"ignored: {reason}")


async def handle_inbound(fed: Federation, job: sa.Row) -> Outcome:
    p = job.payload
    async with fed.hub.db.read() as conn:
        row = await job_store.get_activity_by_id(conn, p["activity_id"])
    if row is None:
        return Outcome("failed", error="activity row is missing")
    doc = json.loads(row.raw)
    await fed.hub.domain_blocks.fresh(fed.hub.db)
    if fed.hub.domain_blocks.blocked(docs.host_of(docs.id_of(doc.get("actor")))):
        return _ignored("the actor's domain is blocked")  # accepted before the block was made
    actor = await discovery.ensure_actor(fed, docs.id_of(doc.get("actor")))
    if actor.deleted_at is not None:
        return _ignored("actor is deleted")
    await _revive_inboxes(fed, actor)
    types = docs.types_of(doc)
    for type_, handler in _HANDLERS.items():
        if type_ in types:
            try:
                return await handler(fed, doc, actor, p.get("inbox")) or DONE
            except BadRequest as exc:
                return Outcome("failed", error=exc.safe)
    return _ignored(f"unsupported activity {sorted(types)}")


async def _revive_inboxes(fed: Federation, actor: sa.Row) -> None:
    """A server that talks to us is up: its inboxes marked gone are tried again."""
    uris = [u for u in (actor.inbox_uri, actor.shared_inbox_uri) if u]
    async with fed.hub.db.read() as conn:
        gone = await job_store.list_gone_inboxes(conn, uris)
    if gone:
        async with fed.hub.db.write() as conn:
            await job_store.clear_inbox_gone(conn, list(gone))


async def _local_actor(conn: Conn, fed: Federation, uri: str | None) -> sa.Row | None:
    ref = fed.hub.uris.parse(uri) if uri else None
    if ref is None or ref.kind != "actor":
        return None
    row = await actor_store.get_local_actor(conn, ref.name)
    return row if row is not None and row.type != "Application" else None


async def _publish(conn: Conn, verb: str, **payload) -> None:
    await job_store.put_jobs(conn, [job_store.job_row("outbox.publish", {"verb": verb, **payload})])


# --- follows --------------------------------------------------------------------------


async def handle_follow(fed: Federation, doc: dict, actor: sa.Row, _inbox: str | None) -> Outcome:
    follow_uri = doc.get("id")
    if not isinstance(follow_uri, str):
        raise BadRequest("Follow without an id")
    async with fed.hub.db.write() as conn:
        target = await _local_actor(conn, fed, docs.id_of(doc.get("object")))
        if target is None:
            return _ignored("Follow of something that is not a local actor")
        if await social.blocked_either_way(conn, actor.id, target.id):
            await _publish(conn, "reject_follow", follower_id=actor.id, followee_id=target.id,
                           follow_uri=follow_uri, activity_id=new_id())
            return DONE
        state = "pending" if target.manually_approves_followers else "accepted"
        row = await social.put_follow(conn, follower_id=actor.id, followee_id=target.id, state=state, uri=follow_uri)
        await client_store.notify_follow(conn, row)
        if row.state == "accepted":
            # Also when the follow was accepted before: the follower may have
            # lost our first Accept (Mastodon re-sends Follows that hang).
            await _publish(conn, "accept_follow", follower_id=actor.id, followee_id=target.id,
                           follow_uri=follow_uri, activity_id=new_id())
    fed.hub.wake()
    return DONE


async def _find_follow(conn: Conn, fed: Federation, obj, *, followee: sa.Row | None = None,
                       follower: sa.Row | None = None) -> sa.Row | None:
    """The follow an Accept/Reject/Undo names: by its id, then by its actor/object."""
    uri = docs.id_of(obj)
    if uri:
        row = await social.get_follow_by_uri(conn, uri)
        if row is not None:
            return row
    if isinstance(obj, dict):
        a = await actor_store.get_actor_by_uri(conn, docs.id_of(obj.get("actor")) or "")
        b = await actor_store.get_actor_by_uri(conn, docs.id_of(obj.get("object")) or "")
        if a is not None and b is not None:
            return await social.get_follow(conn, follower_id=a.id, followee_id=b.id)
    return None


async def handle_accept(fed: Federation, doc: dict, actor: sa.Row, _inbox: str | None) -> Outcome:
    from hub.consent import federation as consent_fed

    done = await consent_fed.answer_from(fed, doc, actor, accept=True)
    return done if done is not None else await _answer_follow(fed, doc, actor, accept=True)


async def handle_reject(fed: Federation, doc: dict, actor: sa.Row, _inbox: str | None) -> Outcome:
    """A Reject ends a pending request, or an accepted follow (the followee
    removed the follower)."""
    from hub.consent import federation as consent_fed

    done = await consent_fed.answer_from(fed, doc, actor, accept=False)
    return done if done is not None else await _answer_follow(fed, doc, actor, accept=False)


async def _answer_follow(fed: Federation, doc: dict, actor: sa.Row, *, accept: bool) -> Outcome:
    async with fed.hub.db.write() as conn:
        follow = await _find_follow(conn, fed, doc.get("object"))
        if follow is None or follow.followee_id != actor.id:
            return _ignored(f"{doc.get('type')} of no follow of ours to this actor")
        if accept:
            await social.accept_follow(conn, follow.id)
        else:
            await social.delete_follow(conn, follow.id)
    return DONE


async def handle_undo(fed: Federation, doc: dict, actor: sa.Row, _inbox: str | None) -> Outcome:
    obj = doc.get("object")
    obj_uri = docs.id_of(obj)
    types = docs.types_of(obj)
    if not types or "Offer" in types:
        from hub.consent import federation as consent_fed

        done = await consent_fed.undo_from(fed, doc, actor)
        if done is not None:
            return done
    async with fed.hub.db.write() as conn:
        if not types or "Follow" in types:
            follow = await _find_follow(conn, fed, obj)
            if follow is not None and follow.follower_id == actor.id:
                await social.delete_follow(conn, follow.id)
                return DONE
        if not types or types & {"Like", "Announce", "EmojiReact"}:
            reaction = await social.get_reaction_by_uri(conn, obj_uri) if obj_uri else None
            if reaction is None and isinstance(obj, dict):
                kind = "announce" if "Announce" in types else "like"
                target = docs.id_of(obj.get("object"))
                if target:
                    reaction = await social.get_reaction(conn, kind=kind, actor_id=actor.id, object_uri=target)
            if reaction is not None and reaction.actor_id == actor.id:
                await social.delete_reaction(conn, reaction.id)
                if reaction.kind == "announce":
                    message = await msg_store.get_message_by_uri(conn, reaction.object_uri)
                    if message is not None:
                        await msg_store.delete_timeline_entries(conn, message.id, via_actor_id=actor.id, reason="announce")
                return DONE
        if not types or "Block" in types:
            target = await _local_actor(conn, fed, docs.id_of(obj.get("object")) if isinstance(obj, dict) else None)
            if target is None and obj_uri:
                row = await social.get_block_by_uri(conn, obj_uri)
                if row is not None and row.blocker_id == actor.id:
                    await social.delete_block(conn, blocker_id=actor.id, blocked_id=row.blocked_id)
                    return DONE
            elif target is not None:
                await social.delete_block(conn, blocker_id=actor.id, blocked_id=target.id)
                return DONE
        if "Accept" in types and isinstance(obj, dict):
            follow = await _find_follow(conn, fed, obj.get("object"))
            if follow is not None and follow.followee_id == actor.id:
                await social.delete_follow(conn, follow.id)
                return DONE
    return _ignored("Undo of nothing we know")


# --- blocks ---------------------------------------------------------------------------


async def handle_block(fed: Federation, doc: dict, actor: sa.Row, _inbox: str | None) -> Outcome:
    async with fed.hub.db.write() as conn:
        target = await _local_actor(conn, fed, docs.id_of(doc.get("object")))
        if target is None:
            return _ignored("Block of something that is not a local actor")
        await social.put_block(conn, blocker_id=actor.id, blocked_id=target.id, uri=docs.id_of(doc))
        await social.delete_follows_between(conn, actor.id, target.id)
    return DONE


# --- notes ----------------------------------------------------------------------------


async def _recipients(conn: Conn, fed: Federation, note: dict, author: sa.Row) -> dict[str, str]:
    """Local actors this note reaches, each with why: ``addressed`` (named in
    its audience) or ``follow`` (a follower, through the followers collection)."""
    audience = {*note["to"], *note["cc"], *note["bto"], *note["bcc"], *note["audience"]}
    out: dict[str, str] = {}
    for uri in audience:
        if addressing.is_public(uri):
            continue
        local = await _local_actor(conn, fed, uri)
        if local is not None:
            out[local.id] = "addressed"
        elif uri == author.followers_uri:
            for follower_id in await social.list_local_followers_of(conn, author.id):
                out.setdefault(follower_id, "follow")
    blocked = await social.list_blocked_ids(conn, author.id)
    return {i: why for i, why in out.items() if i not in blocked and i != author.id}


async def _conversation_for(conn: Conn, fed: Federation, note: dict, author: sa.Row) -> str:
    """Group by ``context`` (or ``conversation``), then by the parent's thread.

    A remote note may name one of *our* conversations only by replying to a
    message in it: naming its URI alone must not add to it, and a URI on our
    origin that we never minted creates nothing.
    """
    parent = await msg_store.get_message_by_uri(conn, note["in_reply_to"]) if note["in_reply_to"] else None
    context = note["context"] or note["conversation"]
    if context and fed.hub.uris.is_local(context):
        conv = await msg_store.get_conversation_by_uri(conn, context)
        if conv is not None and parent is not None and parent.conversation_id == conv.id:
            return conv.id
        context = None
    if context:
        row = await msg_store.ensure_conversation(conn, uri=context, owner_id=None, local=False)
        return row.id
    if parent is not None and parent.conversation_id:
        return parent.conversation_id
    conv_id = new_id()
    row = await msg_store.ensure_conversation(conn, uri=fed.hub.uris.conversation(conv_id), owner_id=author.id,
                                              local=True, conversation_id=conv_id)
    return row.id


async def store_note(
    fed: Federation, conn: Conn, obj: dict, author: sa.Row, *, conversation_id: str | None = None
) -> sa.Row | None:
    """Store a remote note once; None if it is tombstoned. The conversation is
    the one given, else found from the note (``context``, then its parent)."""
    note = docs.parse_note(obj)
    if not docs.same_origin(note["uri"], author.uri) or note["attributed_to"] != author.uri:
        raise BadRequest("note is not attributed to the activity's actor")
    existing = await msg_store.get_message_by_uri(conn, note["uri"])
    if existing is not None:
        return None if existing.deleted_at is not None else existing
    visibility = addressing.visibility_of(note["to"], note["cc"], followers_uri=author.followers_uri)
    message_id = new_id()
    await msg_store.put_message(
        conn,
        {
            "id": message_id,
            "uri": note["uri"],
            "url": note["url"],
            "actor_id": author.id,
            "conversation_id": conversation_id or await _conversation_for(conn, fed, note, author),
            "in_reply_to_uri": note["in_reply_to"],
            "content_html": note["content_html"],
            "content_text": note["content_text"],
            "summary": note["summary"],
            "sensitive": note["sensitive"],
            "language": note["language"],
            "visibility": visibility,
            "to_uris": note["to"],
            "cc_uris": note["cc"],
            "mention_uris": note["mentions"],
            "tags": note["hashtags"],
            "local": False,
            "network": "activitypub",
            "remote_id": note["uri"],
            "raw": json.dumps(obj),
            "published_at": note["published"] or docs.parse_time(obj.get("published")) or utcnow(),
            "edited_at": note["updated"],
        },
    )
    for a, file_id in zip(note["attachments"], new_ids(len(note["attachments"])), strict=True):
        await bridge_store.put_remote_attachment(conn, message_id=message_id, url=a["url"], filename=a["filename"],
                                                 content_type=a["media_type"], description=a["description"],
                                                 attachment_id=file_id)
    return await msg_store.get_message_by_uri(conn, note["uri"])


async def ensure_note(fed: Federation, uri: str) -> sa.Row | None:
    """A note by URI: ours or stored, else fetched from its origin and stored
    (with its author). None if it has been deleted."""
    async with fed.hub.db.read() as conn:
        row = await msg_store.get_message_by_uri(conn, uri)
    if row is not None:
        return None if row.deleted_at is not None else row
    if fed.hub.uris.is_local(uri):
        return None
    doc = await discovery.fetch_object(fed, uri)
    author = await discovery.ensure_actor(fed, docs.id_of(doc.get("attributedTo")) or "")
    async with fed.hub.db.write() as conn:
        return await store_note(fed, conn, doc, author)


async def handle_create(fed: Federation, doc: dict, actor: sa.Row, _inbox: str | None) -> Outcome:
    obj = doc.get("object")
    if isinstance(obj, str):
        obj = await discovery.fetch_object(fed, obj)
    if not isinstance(obj, dict):
        raise BadRequest("Create without an object")
    if "ConsentReceipt" in docs.types_of(obj):
        from hub.consent import federation as consent_fed

        return await consent_fed.receipt_from(fed, obj, actor)
    if not docs.types_of(obj) & docs.NOTE_TYPES:
        return _ignored(f"Create of {sorted(docs.types_of(obj))}")
    note = docs.parse_note(obj)
    if not docs.same_origin(note["uri"], actor.uri) or note["attributed_to"] != actor.uri:
        raise BadRequest("note is not attributed to the activity's actor")
    from hub.federation import conversations

    async with fed.hub.db.write() as conn:
        recipients = await _recipients(conn, fed, note, actor)
        addressed = [i for i, why in recipients.items() if why == "addressed"]
        handled, message, follow_up = await conversations.place_created_note(fed, conn, obj, note, actor, addressed)
        if handled and message is None:
            return _ignored("the conversation's owner does not take this message")
        if not handled:
            parent = await msg_store.get_message_by_uri(conn, note["in_reply_to"]) if note["in_reply_to"] else None
            if not recipients and not (parent is not None and parent.local):
                return _ignored("note addressed to no one here")
            message = await store_note(fed, conn, obj, actor)
            if message is None:
                return _ignored("note already deleted")
        for reason in ("addressed", "follow"):
            ids = [i for i, why in recipients.items() if why == reason]
            if ids:
                await msg_store.put_timeline_entries(conn, message.id, ids, reason=reason)
                if reason == "addressed":
                    await client_store.add_notifications(conn, ids, "mention", actor.id, message.id)
        if follow_up == "add":
            await _publish(conn, "add", message_id=message.id, activity_id=new_id())
    fed.hub.wake()
    return DONE


async def handle_update(fed: Federation, doc: dict, actor: sa.Row, _inbox: str | None) -> Outcome:
    obj = doc.get("object")
    if isinstance(obj, str):
        obj = await discovery.fetch_object(fed, obj)
    types = docs.types_of(obj)
    if types & docs.ACTOR_TYPES:
        if docs.id_of(obj) != actor.uri:
            raise BadRequest("an actor can only update itself")
        await discovery.store_actor_document(fed, obj, fetched_from=actor.uri)
        return DONE
    if not types & docs.NOTE_TYPES:
        return _ignored(f"Update of {sorted(types)}")
    note = docs.parse_note(obj)
    async with fed.hub.db.write() as conn:
        message = await msg_store.get_message_by_uri(conn, note["uri"])
        if message is None or message.deleted_at is not None:
            return _ignored("Update of a note we do not have")
        if message.actor_id != actor.id or note["attributed_to"] != actor.uri:
            raise BadRequest("only the author can update a note")
        # Compare the sender's own timestamps only (ours would add clock skew).
        previous = docs.parse_time(json.loads(message.raw).get("updated")) if message.raw else None
        if note["updated"] and previous and note["updated"] <= previous:
            return _ignored("stale Update")
        await msg_store.update_message(
            conn,
            message.id,
            {
                "content_html": note["content_html"],
                "content_text": note["content_text"],
                "summary": note["summary"],
                "sensitive": note["sensitive"],
                "edited_at": note["updated"] or utcnow(),
                "raw": json.dumps(obj),
                "tags": note["hashtags"],
            },
        )
        await message_changed(conn, fed.hub, "edit", message.id)
    return DONE


async def handle_delete(fed: Federation, doc: dict, actor: sa.Row, _inbox: str | None) -> Outcome:
    obj_uri = docs.id_of(doc.get("object"))
    if not obj_uri:
        raise BadRequest("Delete without an object")
    if obj_uri == actor.uri:
        from hub import media
        from hub.leaving import forget_claims_of_remote
        from hub.store.schema import conversations as conversations_table

        discovery.forget_keys_of(fed, actor.uri)
        async with fed.hub.db.write() as conn:
            await social.delete_follows_of_actor(conn, actor.id)
            await msg_store.delete_messages_of_actors(conn, [actor.id])
            files = await forget_claims_of_remote(conn, actor)  # addresses it took with it when it moved away
            await actor_store.mark_actor_deleted(conn, actor.id)
            # the conversations it owned end for everyone here (its copy of them stays readable)
            await conn.execute(sa.update(conversations_table).where(
                conversations_table.c.owner_id == actor.id, conversations_table.c.closed_at.is_(None))
                .values(closed_at=utcnow()))
        for sha in files:  # once committed
            media.path_of(fed.hub.cfg, sha).unlink(missing_ok=True)
        return DONE
    async with fed.hub.db.write() as conn:
        message = await msg_store.get_message_by_uri(conn, obj_uri)
        if message is None:
            return _ignored("Delete of a note we do not have")
        if message.actor_id != actor.id:
            raise BadRequest("only the author can delete a note")
        await msg_store.mark_message_deleted(conn, message.id)
        await message_changed(conn, fed.hub, "delete", message.id)
    return DONE


# --- reactions ----------------------------------------------------------------------------


async def handle_like(fed: Federation, doc: dict, actor: sa.Row, _inbox: str | None) -> Outcome:
    obj_uri = docs.id_of(doc.get("object"))
    uri = docs.id_of(doc)
    if not obj_uri or not uri:
        raise BadRequest("Like without an id or object")
    content = doc.get("_misskey_reaction") or doc.get("content")
    async with fed.hub.db.write() as conn:
        await social.put_reaction(conn, uri=uri, kind="like", actor_id=actor.id, object_uri=obj_uri,
                                  content=content[:255] if isinstance(content, str) else None)
        await client_store.notify_reaction(conn, "like", actor.id, obj_uri)
    return DONE


async def handle_announce(fed: Federation, doc: dict, actor: sa.Row, _inbox: str | None) -> Outcome:
    obj = doc.get("object")
    obj_uri = docs.id_of(obj)
    uri = docs.id_of(doc)
    if not obj_uri or not uri:
        raise BadRequest("Announce without an id or object")
    async with fed.hub.db.write() as conn:
        await social.put_reaction(conn, uri=uri, kind="announce", actor_id=actor.id, object_uri=obj_uri)
        await client_store.notify_reaction(conn, "announce", actor.id, obj_uri)
        followers = await social.list_local_followers_of(conn, actor.id)
        message = await msg_store.get_message_by_uri(conn, obj_uri)
    if not followers:
        return DONE
    if message is None and not fed.hub.uris.is_local(obj_uri):
        # Boosted note we have never seen: fetch it from its origin (never
        # trust an inlined copy from the booster).
        try:
            fetched = await discovery.fetch_object(fed, obj_uri)
            author = await discovery.ensure_actor(fed, docs.id_of(fetched.get("attributedTo")) or "")
            async with fed.hub.db.write() as conn:
                message = await store_note(fed, conn, fetched, author)
        except HubError as exc:
            if getattr(exc, "permanent", True):
                return _ignored(f"boosted note unavailable: {exc}")
            raise
    if message is None or not addressing.visible_to_anyone(message.visibility):
        return DONE
    async with fed.hub.db.write() as conn:
        blocked = await social.list_blocked_ids(conn, actor.id)
        targets = [f for f in followers if f not in blocked]
        await msg_store.put_timeline_entries(conn, message.id, targets, reason="announce", via_actor_id=actor.id)
    return DONE


async def handle_flag(fed: Federation, doc: dict, actor: sa.Row, _inbox: str | None) -> Outcome:
    """A report from another server's moderators or users: kept for our
    administrators when it names one of our actors or messages (Mastodon
    sends it from its instance actor, naming the account then the posts;
    Misskey and GoToSocial the same shape, ``content`` the comment)."""
    from hub.store import moderation as mod_store

    named = [u for u in (docs.id_of(o) for o in docs.as_list(doc.get("object"))) if u][:50]
    ours = [u for u in named if fed.hub.uris.parse(u) is not None]
    if not ours:
        return _ignored("the report names nothing of ours")
    content = doc.get("content") if isinstance(doc.get("content"), str) else None
    async with fed.hub.db.write() as conn:
        created = await mod_store.put_report(
            conn, uri=docs.valid_uri(doc.get("id")), reporter_uri=actor.uri, target_uris=ours,
            content=textmod.html_to_text(content)[:5000] if content else None, raw=doc)
    if created is None:
        return _ignored("the same report came before")
    log.info("report %s from %s about %s", created, actor.uri, ", ".join(ours))
    return DONE


async def handle_offer(fed: Federation, doc: dict, actor: sa.Row, inbox: str | None) -> Outcome:
    from hub.consent import federation as consent_fed

    return await consent_fed.handle_offer(fed, doc, actor, inbox)


_HANDLERS = {
    "Flag": handle_flag,
    "Follow": handle_follow,
    "Accept": handle_accept,
    "Reject": handle_reject,
    "Undo": handle_undo,
    "Block": handle_block,
    "Create": handle_create,
    "Update": handle_update,
    "Delete": handle_delete,
    "Like": handle_like,
    "EmojiReact": handle_like,
    "Announce": handle_announce,
    "Add": lambda fed, doc, actor, inbox: _conversations().handle_add(fed, doc, actor, inbox),
    "Remove": lambda fed, doc, actor, inbox: _conversations().handle_remove(fed, doc, actor, inbox),
    "Offer": handle_offer,
    "Move": lambda fed, doc, actor, inbox: _moving().handle_move(fed, doc, actor, inbox),
}


def _moving():
    from hub import moving

    return moving


def _conversations():
    from hub.federation import conversations

    return conversations

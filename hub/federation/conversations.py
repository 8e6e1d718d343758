"""Conversations over ActivityPub: FEP-171b containers, with a plain fallback.

A conversation's container is kept by its owner's hub (the customer's). Who
gets what:

* on the owner's hub, every message (local, or a participant's arriving by
  ``Create``) is handed to each remote participant whose software implements
  FEP-171b (FEP-844e ``implements``) as ``Add{actor: owner, object: Create,
  target: container}``; participants without it (Mastodon and the like) get the
  author's plain ``Create`` with ``context``, from the author's hub;
* on a participant's hub, a message goes as ``Create`` to the owner only, and
  to the participants without FEP-171b (the owner cannot speak for its author
  to them);
* a hub that holds a conversation for a remote owner (an organization here
  wrote first to a customer elsewhere) sends plain ``Create`` to everyone until
  the owner's hub adopts the thread: that hub answers with an ``Add`` naming its
  own container, and this hub moves the conversation there.

An ``Add`` is accepted only from the owner of its target (same origin,
``attributedTo``), and its object is authenticated per FEP-fe34: embedded
objects of the owner's origin are trusted, others are fetched from their own
origin. The owner removes a message with ``Add{object: Delete{object: note}}``
(FEP-171b) or ``Remove``; both are understood.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import sqlalchemy as sa

from hub import addressing
from hub.errors import BadRequest
from hub.federation import discovery, render
from hub.federation import documents as docs
from hub.ids import new_id
from hub.inbox.conversations import message_changed, owner_for, place_message
from hub.jobs import DONE, Outcome
from hub.store import actors as actor_store
from hub.store import conversations as conv_store
from hub.store import jobs as job_store
from hub.store import messages as msg_store
from hub.store.base import Conn, utcnow

if TYPE_CHECKING:
    from hub.federation import Federation

log = logging.getLogger(__name__)
MAX_BACKFILL = 200


def implements_171b(actor: sa.Row) -> bool:
    return bool(actor.local) or render.FEP_171B in (actor.implements or [])


def owner_of(participants: list[sa.Row]) -> sa.Row | None:
    return next((p for p in participants if p.role == "owner"), None)


def hosted_here(conversation: sa.Row, participants: list[sa.Row]) -> bool:
    """We keep the container and speak for its owner: both are ours."""
    owner = owner_of(participants)
    return bool(conversation.local) and owner is not None and bool(owner.local)


def plan(conversation: sa.Row, participants: list[sa.Row], author_id: str) -> tuple[list[sa.Row], list[sa.Row]]:
    """``(gets the Create, gets the owner's Add)`` among remote participants."""
    remote = [p for p in participants if not p.local and p.id != author_id]
    if hosted_here(conversation, participants):
        return [p for p in remote if not implements_171b(p)], [p for p in remote if implements_171b(p)]
    owner = owner_of(participants)
    if not conversation.local and owner is not None and not owner.local and implements_171b(owner):
        return [p for p in remote if p.id == owner.id or not implements_171b(p)], []
    return remote, []


def container_ref(conversation: sa.Row, owner_uri: str) -> dict:
    return {"type": "OrderedCollection", "id": conversation.uri, "attributedTo": owner_uri}


def inbox_of(actor: sa.Row) -> str | None:
    return actor.shared_inbox_uri or actor.inbox_uri


async def create_activity_of(conn: Conn, message: sa.Row) -> dict | None:
    """The Create that brought a message: as its author sent it (kept raw)."""
    row = await job_store.get_activity_for(conn, type="Create", object_uri=message.uri)
    return json.loads(row.raw) if row is not None else None


def add_activity(fed: Federation, *, activity_id: str, owner: sa.Row, inner: dict, conversation: sa.Row,
                 audience: list[str]) -> dict:
    inner = {k: v for k, v in inner.items() if k != "@context"}
    return render.activity("Add", id=fed.hub.uris.activity(activity_id), actor=owner.uri, object=inner,
                           to=audience, target=container_ref(conversation, owner.uri), published=utcnow(),
                           context=render.NOTE_CONTEXT)


# --- outbound -------------------------------------------------------------------------------


async def publish_conversation_message(fed: Federation, p: dict, message: sa.Row, doc: dict) -> bool:
    """Deliver a Create/Update/Delete of a conversation message per the plan above.

    Returns False when the message is not in a conversation with participants
    (the caller then delivers by plain addressing).
    """
    from hub.federation.publish import store_and_deliver

    hub = fed.hub
    async with hub.db.read() as conn:
        conversation = await msg_store.get_conversation_by_id(conn, message.conversation_id) if message.conversation_id else None
        participants = await conv_store.list_participants(conn, conversation.id) if conversation else []
        author = await actor_store.get_actor_by_id(conn, message.actor_id)
    if not participants:
        return False
    create_to, add_to = plan(conversation, participants, message.actor_id)
    async with hub.db.write() as conn:
        await store_and_deliver(fed, conn, activity_id=p["activity_id"], doc=doc, signer=author,
                                inboxes=[inbox_of(a) for a in create_to], object_uri=message.uri)
        if add_to:
            owner = owner_of(participants)
            owner_row = await actor_store.get_actor_by_id(conn, owner.id)
            add_id = new_id()
            add = add_activity(fed, activity_id=add_id, owner=owner_row, inner=doc, conversation=conversation,
                               audience=[a.uri for a in participants if a.id != owner.id])
            await store_and_deliver(fed, conn, activity_id=add_id, doc=add, signer=owner_row,
                                    inboxes=[inbox_of(a) for a in add_to], object_uri=message.uri)
    return True


async def publish_add(fed: Federation, p: dict) -> None:
    """The owner's hub hands a participant's message to the others (verb ``add``)."""
    from hub.federation.publish import store_and_deliver

    hub = fed.hub
    async with hub.db.read() as conn:
        message = await msg_store.get_message_by_id(conn, p["message_id"])
        conversation = await msg_store.get_conversation_by_id(conn, message.conversation_id)
        participants = await conv_store.list_participants(conn, conversation.id)
        inner = await create_activity_of(conn, message)
    owner = owner_of(participants)
    if inner is None or owner is None or not hosted_here(conversation, participants):
        return
    _create_to, add_to = plan(conversation, participants, author_id=owner.id)
    if not add_to:
        return
    async with hub.db.write() as conn:
        owner_row = await actor_store.get_actor_by_id(conn, owner.id)
        add = add_activity(fed, activity_id=p["activity_id"], owner=owner_row, inner=inner, conversation=conversation,
                           audience=[a.uri for a in participants if a.id != owner.id])
        await store_and_deliver(fed, conn, activity_id=p["activity_id"], doc=add, signer=owner_row,
                                inboxes=[inbox_of(a) for a in add_to], object_uri=message.uri)


async def publish_remove(fed: Federation, p: dict) -> None:
    """The owner took a message out: ``Add{object: Delete{object: note}}`` (FEP-171b)."""
    from hub.federation.publish import store_and_deliver

    hub = fed.hub
    async with hub.db.read() as conn:
        message = await msg_store.get_message_by_id(conn, p["message_id"])
        conversation = await msg_store.get_conversation_by_id(conn, p["conversation_id"])
        participants = await conv_store.list_participants(conn, conversation.id)
    owner = owner_of(participants)
    if owner is None or not owner.local:
        return
    _create_to, add_to = plan(conversation, participants, author_id=owner.id)
    async with hub.db.write() as conn:
        owner_row = await actor_store.get_actor_by_id(conn, owner.id)
        delete = {"id": hub.uris.activity(new_id()), "type": "Delete", "actor": owner.uri, "object": message.uri}
        add = add_activity(fed, activity_id=p["activity_id"], owner=owner_row, inner=delete, conversation=conversation,
                           audience=[a.uri for a in participants if a.id != owner.id])
        await store_and_deliver(fed, conn, activity_id=p["activity_id"], doc=add, signer=owner_row,
                                inboxes=[inbox_of(a) for a in add_to], object_uri=message.uri)


async def publish_backfill(fed: Federation, p: dict) -> None:
    """A participant joined: hand them the conversation so far, as the owner's Adds."""
    from hub.federation.publish import store_and_deliver

    hub = fed.hub
    async with hub.db.read() as conn:
        conversation = await msg_store.get_conversation_by_id(conn, p["conversation_id"])
        participants = await conv_store.list_participants(conn, conversation.id)
        newcomer = await actor_store.get_actor_by_id(conn, p["actor_id"])
        history = await conv_store.list_messages(conn, conversation.id, limit=MAX_BACKFILL)
        inners = [(m, await create_activity_of(conn, m)) for m in history]
    owner = owner_of(participants)
    if owner is None or not owner.local or newcomer is None or newcomer.local or not implements_171b(newcomer):
        return
    async with hub.db.write() as conn:
        owner_row = await actor_store.get_actor_by_id(conn, owner.id)
        for m, inner in inners:
            if inner is None:
                continue
            add_id = new_id()
            add = add_activity(fed, activity_id=add_id, owner=owner_row, inner=inner, conversation=conversation,
                               audience=[a.uri for a in participants if a.id != owner.id])
            await store_and_deliver(fed, conn, activity_id=add_id, doc=add, signer=owner_row,
                                    inboxes=[inbox_of(newcomer)], object_uri=m.uri)


# --- inbound --------------------------------------------------------------------------------


async def _participants_for(conn: Conn, fed: Federation, note: dict, author: sa.Row) -> list[sa.Row]:
    """The author and every known actor the note addresses (ours are always known)."""
    uris = [u for u in dict.fromkeys([*note["to"], *note["cc"], *note["mentions"]]) if not addressing.is_public(u)]
    rows = [author]
    for actor in await actor_store.get_actors_by_uris(conn, uris):
        if actor.id != author.id and actor.type != "Application":
            rows.append(actor)
    return rows


async def place_created_note(
    fed: Federation, conn: Conn, obj: dict, note: dict, author: sa.Row, local_recipients: list[str]
) -> tuple[bool, sa.Row | None, str | None]:
    """Put a note that arrived by ``Create`` into the inbox model.

    Returns ``(handled, message, follow-up)``: ``handled`` is False for a post
    that is no conversation's (the caller keeps it as a post); ``message`` is
    None when the conversation's owner refuses it (not a participant, or the
    conversation is closed); ``follow-up`` is ``"add"`` when this hub, as the
    owner's, must hand the message to the other participants.
    """
    from hub.federation.handlers import store_note

    hub = fed.hub
    existing = await msg_store.get_message_by_uri(conn, note["uri"])
    if existing is not None:
        return True, existing, None
    # Grouping: context, then ostatus:conversation, then the reply chain.
    conversation = None
    for uri in (note["context"], note["conversation"]):
        if uri and conversation is None:
            conversation = await conv_store.get_conversation_by_any_uri(conn, uri)
    if conversation is None and note["in_reply_to"]:
        parent = await msg_store.get_message_by_uri(conn, note["in_reply_to"])
        if parent is not None and parent.conversation_id:
            conversation = await msg_store.get_conversation_by_id(conn, parent.conversation_id)
    participants = await conv_store.list_participants(conn, conversation.id) if conversation else []
    if conversation is not None and not participants:
        return False, None, None  # a thread of posts, not an inbox conversation
    if conversation is not None:
        if hosted_here(conversation, participants):
            if not any(p.id == author.id for p in participants):
                return True, None, None  # not a participant: the owner does not add it
            if conversation.closed_at is not None:
                return True, None, None
            message = await store_note(fed, conn, obj, author, conversation_id=conversation.id)
            if message is not None:
                await place_message(conn, hub, conversation, message)
            return True, message, "add"
        if any(p.id == author.id for p in participants):
            for p in await _participants_for(conn, fed, note, author):
                await conv_store.put_participant(conn, conversation.id, p.id)
            message = await store_note(fed, conn, obj, author, conversation_id=conversation.id)
            if message is not None:
                await place_message(conn, hub, conversation, message)
            return True, message, None
        # Someone who does not take part names the conversation: they join only
        # when its owner adds them (an Add); what they wrote starts its own thread.
        conversation, foreign_context = None, True
    else:
        foreign_context = False
    visibility = addressing.visibility_of(note["to"], note["cc"], followers_uri=author.followers_uri)
    if visibility != "direct" or not local_recipients:
        return False, None, None  # a post, not a conversation: the caller keeps it as before
    people = await _participants_for(conn, fed, note, author)
    local_people = [p for p in people if p.local and p.type == "Person"]
    if author.type != "Person" and local_people:
        # An organization wrote first to one of our customers: the thread is
        # the customer's, so its container is kept here, and the sender's hub
        # is told (by the Add) where the conversation now lives.
        owner = local_people[0]
        conv_id = new_id()
        conversation = await msg_store.ensure_conversation(
            conn, uri=hub.uris.conversation(conv_id), owner_id=owner.id, local=True, conversation_id=conv_id
        )
        follow_up = "add"
    else:
        owner = owner_for(author, [p for p in people if p.id != author.id])
        if note["context"] and not hub.uris.is_local(note["context"]) and not foreign_context:
            conversation = await msg_store.ensure_conversation(conn, uri=note["context"], owner_id=owner.id, local=False)
        else:
            conv_id = new_id()
            conversation = await msg_store.ensure_conversation(
                conn, uri=hub.uris.conversation(conv_id), owner_id=owner.id, local=True, conversation_id=conv_id
            )
        follow_up = None
    await conv_store.update_conversation(conn, conversation.id, {"visibility": "direct"})
    for alias in (note["context"], note["conversation"]) if not foreign_context else ():
        if alias and alias != conversation.uri and not hub.uris.is_local(alias):
            await conv_store.put_alias(conn, alias, conversation.id)
    for p in people:
        await conv_store.put_participant(conn, conversation.id, p.id, role="owner" if p.id == owner.id else "participant")
    conversation = await msg_store.get_conversation_by_id(conn, conversation.id)
    message = await store_note(fed, conn, obj, author, conversation_id=conversation.id)
    if message is not None:
        await place_message(conn, hub, conversation, message)
    return True, message, follow_up


async def handle_add(fed: Federation, doc: dict, actor: sa.Row, _inbox: str | None) -> Outcome:
    """An owner's Add to its conversation container (FEP-171b)."""
    from hub.federation.handlers import store_note

    hub = fed.hub
    target = doc.get("target")
    target_id = docs.id_of(target)
    inner = doc.get("object")
    if not target_id or not docs.same_origin(target_id, actor.uri):
        return Outcome("done", error="ignored: Add to a collection that is not the actor's")
    if isinstance(target, dict) and target.get("attributedTo") not in (None, actor.uri):
        return Outcome("done", error="ignored: Add by someone who does not own the conversation")
    if isinstance(inner, str):
        inner = await discovery.fetch_object(fed, inner)
    types = docs.types_of(inner)
    if not types & {"Create", "Update", "Delete"}:
        return Outcome("done", error=f"ignored: Add of {sorted(types)}")
    async with hub.db.read() as conn:
        conversation = await conv_store.get_conversation_by_any_uri(conn, target_id)
    if conversation is not None and conversation.owner_id is not None:
        async with hub.db.read() as conn:
            owner = await actor_store.get_actor_by_id(conn, conversation.owner_id)
        if conversation.local and owner is not None and owner.local:
            return Outcome("done", error="ignored: an Add to a conversation we keep ourselves")
        if owner is not None and owner.uri != actor.uri and not conversation.local:
            if not await _owner_now(fed, target_id, actor):
                return Outcome("done", error="ignored: Add by someone who does not own the conversation")
    if "Delete" in types:
        return await _removed(fed, conversation, docs.id_of(inner.get("object")), actor)
    obj = inner.get("object")
    note_id = docs.id_of(obj)
    if not note_id:
        raise BadRequest("Add of an activity without an object")
    if hub.uris.is_local(note_id):
        # One of ours, handed back by the owner: we have it (and never trust a copy).
        note_doc, note, author = None, None, None
    else:
        inner_actor = docs.id_of(inner.get("actor"))
        if isinstance(obj, dict) and inner_actor and docs.same_origin(inner_actor, actor.uri) and docs.same_origin(note_id, actor.uri):
            note_doc = obj  # of the owner's own origin: the owner's signature vouches for it
        else:
            # FEP-fe34: another origin's object is taken from its origin, never from the Add.
            note_doc = await discovery.fetch_object(fed, note_id)
        note = docs.parse_note(note_doc)
        author = await discovery.ensure_actor(fed, note["attributed_to"] or "")
    # only an actor that names earlier accounts of its own (alsoKnownAs) can have moved a conversation
    moved = await _moved_here(fed, target_id, actor) if conversation is None and actor.also_known_as else None
    async with hub.db.write() as conn:
        if moved is not None:
            # the owner moved and its new hub keeps the conversation now: same conversation, new home
            await conv_store.repoint_conversation(conn, moved.id, uri=target_id, owner_id=actor.id, local=False)
        conversation = await conv_store.get_conversation_by_any_uri(conn, target_id)
        message = await msg_store.get_message_by_uri(conn, note_id)
        if message is None and note is None:
            return Outcome("done", error="ignored: Add of a message of ours we do not have")
        if conversation is None and message is not None and message.conversation_id:
            # The owner's hub adopted a thread we started: move it to their
            # container. Only the customer we hold it for may: anyone else
            # naming one of our messages takes nothing.
            held = await msg_store.get_conversation_by_id(conn, message.conversation_id)
            if held is None or not held.local or held.owner_id != actor.id:
                return Outcome("done", error="ignored: Add of our message by someone we do not hold it for")
            await conv_store.repoint_conversation(conn, message.conversation_id, uri=target_id, owner_id=actor.id, local=False)
            conversation = await msg_store.get_conversation_by_id(conn, message.conversation_id)
        elif conversation is None:
            conversation = await msg_store.ensure_conversation(conn, uri=target_id, owner_id=actor.id, local=False)
            await conv_store.update_conversation(conn, conversation.id, {"visibility": "direct"})
        await _own(conn, conversation, actor)
        if note is not None:
            for p in await _participants_for(conn, fed, note, author):
                await conv_store.put_participant(conn, conversation.id, p.id)
        # The owner addresses its Adds to the participants: a local actor it
        # names takes part (one brought in later gets the earlier messages so).
        audience = [u for u in docs.ids_of(doc.get("to")) + docs.ids_of(doc.get("cc")) if hub.uris.is_local(u)]
        for p in await actor_store.get_actors_by_uris(conn, audience):
            if p.local and p.type != "Application":
                await conv_store.put_participant(conn, conversation.id, p.id)
        if message is None:
            message = await store_note(fed, conn, note_doc, author, conversation_id=conversation.id)
            if message is None:
                return DONE
            conversation = await msg_store.get_conversation_by_id(conn, conversation.id)
            await place_message(conn, hub, conversation, message)
        elif message.conversation_id != conversation.id:
            await msg_store.update_message(conn, message.id, {"conversation_id": conversation.id})
        elif "Update" in types and not message.local and note is not None:
            await msg_store.update_message(conn, message.id, {
                "content_html": note["content_html"], "content_text": note["content_text"],
                "edited_at": note["updated"] or utcnow(), "raw": json.dumps(note_doc), "tags": note["hashtags"],
            })
            await message_changed(conn, hub, "edit", message.id)
    return DONE


async def _moved_here(fed: Federation, container_uri: str, actor: sa.Row) -> sa.Row | None:
    """A conversation we hold under another URI that ``actor``'s new container names as what it was
    (``alsoKnownAs``, asked of the container's origin): ours only when ``actor`` owns it here, or its
    owner here has moved to ``actor``. An owner that moved imports its conversations on its new hub,
    which names the old collections so."""
    try:
        container = await discovery.fetch_object(fed, container_uri)
    except Exception:  # unreachable or refused: a new conversation, as before
        return None
    if docs.id_of(container.get("attributedTo")) != actor.uri:
        return None
    async with fed.hub.db.read() as conn:
        for alias in docs.ids_of(container.get("alsoKnownAs"))[:20]:
            held = await conv_store.get_conversation_by_any_uri(conn, alias)
            if held is None:
                continue
            owner = await actor_store.get_actor_by_id(conn, held.owner_id) if held.owner_id else None
            if owner is not None and (owner.id == actor.id or owner.moved_to == actor.uri):
                return held
    return None


async def _owner_now(fed: Federation, container_uri: str, actor: sa.Row) -> bool:
    """Whether the container's own hub now names ``actor`` its owner (the
    customer claimed a bridged identity that owned it): asked of the
    container's origin, never taken from the Add."""
    try:
        container = await discovery.fetch_object(fed, container_uri)
    except Exception:  # unreachable or refused: the ownership stays as it was
        return False
    return docs.id_of(container.get("attributedTo")) == actor.uri and docs.same_origin(container_uri, actor.uri)


async def _own(conn: Conn, conversation: sa.Row, owner: sa.Row) -> None:
    if conversation.owner_id not in (None, owner.id):
        await conv_store.set_role(conn, conversation.id, conversation.owner_id, "participant")
    if not await conv_store.put_participant(conn, conversation.id, owner.id, role="owner"):
        await conv_store.set_role(conn, conversation.id, owner.id, "owner")
    if conversation.owner_id != owner.id:
        await conv_store.update_conversation(conn, conversation.id, {"owner_id": owner.id})


async def _removed(fed: Federation, conversation: sa.Row | None, note_uri: str | None, actor: sa.Row) -> Outcome:
    if conversation is None or not note_uri or conversation.owner_id is None:
        return Outcome("done", error="ignored: removal from a conversation we do not have")
    async with fed.hub.db.write() as conn:
        owner = await actor_store.get_actor_by_id(conn, conversation.owner_id)
        if owner is None or owner.uri != actor.uri:
            return Outcome("done", error="ignored: only the owner removes messages")
        message = await msg_store.get_message_by_uri(conn, note_uri)
        if message is not None and message.conversation_id == conversation.id and message.removed_at is None:
            await msg_store.update_message(conn, message.id, {"removed_at": utcnow()})
            await message_changed(conn, fed.hub, "remove", message.id)
    return DONE


async def handle_remove(fed: Federation, doc: dict, actor: sa.Row, _inbox: str | None) -> Outcome:
    target_id = docs.id_of(doc.get("target"))
    if not target_id:
        return Outcome("done", error="ignored: Remove without a target")
    async with fed.hub.db.read() as conn:
        conversation = await conv_store.get_conversation_by_any_uri(conn, target_id)
    return await _removed(fed, conversation, docs.id_of(doc.get("object")), actor)


"""Conversations the customer owns: starting, replying, participants, moderation.

A conversation belongs to the customer (a ``Person``) who takes part in it:
the one who starts it, or the first customer an organization writes to.
Its container lives on the owner's hub, which hears every message and hands
it to every participant. This module keeps our own state and queues
``outbox.publish`` jobs; how messages travel is the network adapters' affair.

``place_message`` is the one door every message, local or arriving from a
network, goes through to enter a conversation: it updates each local
participant's inbox state (reopening resolved or snoozed conversations),
fires webhooks and queues the members' notification mails (``hub.notify``).
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from hub import media, notify
from hub import text as textmod
from hub.context import Hub
from hub.errors import Forbidden, NotFound, UsageError
from hub.ids import new_id, new_ids
from hub.inbox import webhooks
from hub.inbox.access import Acting, audit
from hub.store import actors as actor_store
from hub.store import bridges as bridge_store
from hub.store import conversations as conv_store
from hub.store import mastodon as client_store
from hub.store import messages as msg_store
from hub.store.base import Conn, utcnow
from hub.store.jobs import job_row, put_jobs

MAX_TEXT = 5000
DEFAULT_SIGNATURE = "— {member_name}, {actor_name}"


def owner_for(starter: sa.Row, others: list[sa.Row]) -> sa.Row:
    """Who owns a new conversation: the customer in it. The starter if a
    person, else the first person written to, else the starter."""
    if starter.type == "Person":
        return starter
    return next((a for a in others if a.type == "Person"), starter)


async def queue_publish(conn: Conn, verb: str, **payload) -> None:
    await put_jobs(conn, [job_row("outbox.publish", {"verb": verb, **payload})])


async def get_conversation(hub: Hub, ref: str) -> sa.Row:
    """A conversation by its local id or any of its URIs."""
    async with hub.db.read() as conn:
        row = await msg_store.get_conversation_by_id(conn, ref) if "/" not in ref else None
        if row is None:
            row = await conv_store.get_conversation_by_any_uri(conn, ref)
    if row is None:
        raise NotFound(f"no conversation {ref}")
    return row


async def require_participant(conn: Conn, acting: Acting, conversation: sa.Row) -> sa.Row:
    """The acting actor's state of a conversation it takes part in (else 404: no probing)."""
    state = await conv_store.get_state(conn, conversation.id, acting.actor.id)
    if state is None:
        raise NotFound("no such conversation")
    return state


def signed_text(text: str, acting: Acting, display_name: str | None = None) -> str:
    """A member writing for an actor signs with their name, as the actor chooses
    (``settings.agent_signature``; an empty template turns signatures off).
    The name is the one the actor set for the member (``settings.member_names``),
    else the member's own display name, else their username."""
    if acting.account is None or acting.account.username == acting.actor.username:
        return text
    settings = acting.actor.settings or {}
    template = settings.get("agent_signature", DEFAULT_SIGNATURE)
    if not template:
        return text
    member_name = (settings.get("member_names", {}).get(acting.account.username) or display_name
                   or acting.account.username)
    try:
        signature = template.format(member_name=member_name, member=acting.account.username,
                                    actor_name=acting.actor.name or acting.actor.username)
    except (KeyError, IndexError, ValueError):
        signature = f"— {member_name}"
    return f"{text}\n\n{signature}"


def _check_text(text: str, files: list | tuple = ()) -> str:
    text = (text or "").strip()
    if not text and files:
        text = "📎 " + ", ".join(f.filename for f in files)  # what networks without files show
    if not text:
        raise UsageError("a message needs some text")
    if len(text) > MAX_TEXT:
        raise UsageError(f"a message can have at most {MAX_TEXT} characters")
    return text


async def place_message(conn: Conn, hub: Hub, conversation: sa.Row, message: sa.Row, *, new: bool = False) -> None:
    """Enter a stored message into its conversation, for every local participant,
    and tell the adapters (bridges) of it."""
    at = message.published_at
    await conv_store.update_conversation(
        conn, conversation.id,
        {"last_message_at": max(at, conversation.last_message_at) if conversation.last_message_at else at},
    )
    for participant in await conv_store.list_participants(conn, conversation.id):
        if not participant.local or participant.type == "Application" or participant.bridge_network:
            continue  # bridged actors keep no inbox: their people read on their own network
        state = await conv_store.get_state(conn, conversation.id, participant.id)
        new = state is None
        if state is None:
            state = await conv_store.ensure_state(conn, conversation.id, participant.id, at=at)
            await webhooks.emit(conn, participant.id, "conversation.created", conversation_data(conversation, state))
        changes: dict = {"last_message_at": max(at, state.last_message_at), "last_message_id": message.id}
        if message.actor_id == participant.id:
            changes["waiting_since"] = None
            if state.waiting_since is not None and state.first_response_at is None:
                changes["first_response_at"] = at
        else:
            if state.waiting_since is None:
                changes["waiting_since"] = at
            if state.status in ("resolved", "snoozed"):
                changes.update(status="open", snoozed_until=None)
                await webhooks.emit(conn, participant.id, "conversation.status_changed",
                                    conversation_data(conversation, state, status="open", previous=state.status))
        await conv_store.update_state(conn, state.id, changes)
        await webhooks.emit(conn, participant.id, "message.created", {
            "conversation": conversation.uri, "message": message.uri, "author_id": message.actor_id,
            "text": message.content_text, "published": message.published_at.isoformat(), "network": message.network,
        })
        await notify.message_placed(conn, hub, conversation, message, participant, state, new=new)
        if message.actor_id != participant.id:  # what a fediverse app shows (hub/mastodon)
            await client_store.add_notifications(conn, [participant.id], "mention", message.actor_id, message.id)
    await hub.message_event(conn, "create", conversation, message)


async def message_changed(conn: Conn, hub: Hub, event: str, message_id: str) -> None:
    """Tell the adapters a conversation's message was edited (``edit``),
    deleted by its author (``delete``) or removed by the owner (``remove``)."""
    message = await msg_store.get_message_by_id(conn, message_id)
    if message is not None and message.conversation_id:
        conversation = await msg_store.get_conversation_by_id(conn, message.conversation_id)
        await hub.message_event(conn, event, conversation, message)


def conversation_data(conversation: sa.Row, state: sa.Row, **extra) -> dict:
    return {"conversation": conversation.uri, "id": conversation.id, "status": state.status, **extra}


async def _post(
    conn: Conn,
    hub: Hub,
    acting: Acting,
    conversation: sa.Row,
    text: str,
    *,
    in_reply_to: sa.Row | None,
    participants: list[sa.Row],
    bridged: dict | None = None,
    files: list[tuple[media.NewFile, str]] = (),
) -> sa.Row:
    """Store a message of a local actor in a conversation and queue its publication.

    ``bridged`` carries what a bridge knows of a message that came from its
    network (``network``, ``remote_id``, ``flags``, ``published_at``); such
    messages are written by bridged actors, and nobody's login did it.
    """
    author = acting.actor
    if acting.account is not None and acting.account.username != author.username:
        person = await actor_store.get_local_actor(conn, acting.account.username)
        text = signed_text(text, acting, person.name if person is not None else None)
    others = [p for p in participants if p.id != author.id]
    handles = {}
    for p in others:
        domain = hub.cfg.domain if p.local else p.domain
        handles[f"{p.username}@{domain}".lower()] = p.url or p.uri
    # The note names every remote addressee: Mastodon notifies only for a
    # mention it can see. The text people read stays as written.
    missing = []
    for p in others:
        handle = f"@{p.username}@{p.domain}"
        if not p.local and handle.lower() not in text.lower():
            missing.append(handle)
    shown = " ".join(missing) + " " + text if missing else text
    message_id = new_id()
    uri = hub.uris.message(message_id)
    now = utcnow()
    audience = [p.uri for p in others]
    bridged = bridged or {}
    await msg_store.put_message(
        conn,
        {
            "id": message_id, "uri": uri, "url": uri, "actor_id": author.id, "conversation_id": conversation.id,
            "in_reply_to_uri": in_reply_to.uri if in_reply_to is not None else None,
            "content_html": textmod.plain_to_html(shown, handles, f"{hub.cfg.base_url}/tags"), "content_text": text,
            "visibility": conversation.visibility or "direct", "to_uris": audience, "cc_uris": [],
            "mention_uris": audience, "local": True, "network": bridged.get("network", "activitypub"),
            "remote_id": bridged.get("remote_id"), "flags": bridged.get("flags") or None,
            "published_at": min(bridged.get("published_at") or now, now), "account_id": acting.account_id,
        },
    )
    for (f, digest), file_id in zip(files, new_ids(len(files)), strict=True):  # before the message is placed: sends carry them
        await bridge_store.put_attachment(conn, message_id=message_id, filename=f.filename,
                                          attachment_id=f.file_id or file_id, description=f.description,
                                          content_type=f.content_type, size=len(f.data), sha256=digest)
    message = await msg_store.get_message_by_id(conn, message_id)
    await place_message(conn, hub, conversation, message)
    await queue_publish(conn, "create", message_id=message_id, activity_id=new_id())
    if not bridged:
        await audit(conn, acting, "message.create", conversation_id=conversation.id, message=uri)
    return message

async def store_files(hub: Hub, files: list[media.NewFile]) -> list[tuple[media.NewFile, str]]:
    """Check the files someone attaches and keep them on disk (by SHA-256);
    the rows that name them are written with the message."""
    if len(files) > media.MAX_FILES:
        raise UsageError(f"a message can carry at most {media.MAX_FILES} files")
    for f in files:
        if len(f.data) > hub.cfg.max_attachment_bytes:
            raise UsageError(f"{f.filename} is too large: at most {hub.cfg.max_attachment_bytes // (1024 * 1024)} MB a file",
                             status=413)
        if not f.data:
            raise UsageError(f"{f.filename} is empty")
    return [(f, await asyncio.to_thread(media.store, hub.cfg, f.data)) for f in files]


async def start(hub: Hub, acting: Acting, targets: list[sa.Row], text: str, *, subject: str | None = None,
                files: list[media.NewFile] = ()) -> tuple[sa.Row, sa.Row]:
    """Start a conversation with ``targets``; returns ``(conversation, first message)``."""
    acting.require("agent")
    text = _check_text(text, files)
    stored = await store_files(hub, list(files))
    targets = [t for t in dict((t.id, t) for t in targets).values() if t.id != acting.actor.id]
    if not targets:
        raise UsageError("a conversation needs someone to talk to")
    if any(t.type == "Application" for t in targets):
        raise UsageError("the instance actor takes part in no conversation")
    from hub.store import social

    owner = owner_for(acting.actor, targets)
    async with hub.db.write() as conn:
        for t in targets:
            if await social.blocked_either_way(conn, acting.actor.id, t.id):
                raise Forbidden(f"cannot write to {t.uri}: one of you blocks the other")
        conv_id = new_id()
        # The container is ours when the owner is ours; when an organization
        # here writes to a customer elsewhere we hold it until the customer's
        # hub adopts it (it then sends an Add naming its own container).
        conversation = await msg_store.ensure_conversation(
            conn, uri=hub.uris.conversation(conv_id), owner_id=owner.id, local=True, conversation_id=conv_id
        )
        await conv_store.update_conversation(conn, conv_id, {"subject": subject, "visibility": "direct"})
        for actor in (acting.actor, *targets):
            await conv_store.put_participant(conn, conv_id, actor.id, role="owner" if actor.id == owner.id else "participant",
                                             added_by_id=acting.actor.id)
        for t in targets:
            if t.bridge_network:  # a person on another network: written to there, a network allowed by starting so
                await _add_channel(conn, conv_id, t, origin=t.id == owner.id)
        conversation = await msg_store.get_conversation_by_id(conn, conv_id)
        participants = await conv_store.list_participants(conn, conv_id)
        message = await _post(conn, hub, acting, conversation, text, in_reply_to=None, participants=participants,
                              files=stored)
        await audit(conn, acting, "conversation.start", conversation_id=conv_id, targets=[t.uri for t in targets])
        conversation = await msg_store.get_conversation_by_id(conn, conv_id)
    hub.wake()
    return conversation, message


async def reply(hub: Hub, acting: Acting, conversation: sa.Row, text: str, *, in_reply_to_uri: str | None = None,
                files: list[media.NewFile] = ()) -> sa.Row:
    """Write in a conversation, as ``acting.actor`` (signed by the member for an organization)."""
    acting.require("agent")
    text = _check_text(text, files)
    stored = await store_files(hub, list(files))
    async with hub.db.write() as conn:
        await require_participant(conn, acting, conversation)
        conversation = await msg_store.get_conversation_by_id(conn, conversation.id)
        if conversation.closed_at is not None:
            raise Forbidden("this conversation is closed")
        participants = await conv_store.list_participants(conn, conversation.id)
        if in_reply_to_uri:
            parent = await msg_store.get_message_by_uri(conn, in_reply_to_uri)
            if parent is None or parent.conversation_id != conversation.id:
                raise NotFound(f"no message {in_reply_to_uri} in this conversation")
        else:
            existing = await conv_store.list_messages(conn, conversation.id)
            parent = await msg_store.get_message_by_id(conn, existing[-1].id) if existing else None
        message = await _post(conn, hub, acting, conversation, text, in_reply_to=parent, participants=participants,
                              files=stored)
    hub.wake()
    return message


def _require_owner(acting: Acting, conversation: sa.Row) -> None:
    if conversation.owner_id != acting.actor.id:
        raise Forbidden("only the conversation's owner can do that")
    if not conversation.local:
        raise Forbidden("the conversation is kept by another hub")


async def _add_channel(conn, conversation_id: str, puppet: sa.Row, *, origin: bool) -> None:
    from hub.store import bridges as bridge_store

    identity = await bridge_store.get_identity_of_puppet(conn, puppet.id)
    if identity is None:
        return
    await bridge_store.add_channel(conn, conversation_id, identity.id)
    if origin:
        await bridge_store.allow_network(conn, conversation_id, identity.network, origin=True)


async def add_participant(hub: Hub, acting: Acting, conversation: sa.Row, target: sa.Row) -> None:
    """The owner brings another actor (a second organization, say) into the conversation.

    While the owner is a bridged person nobody has claimed yet (a customer who
    wrote by email), the conversation's local participants steward it: they
    may bring others in, as the owner could. The claimed owner decides alone.
    """
    acting.require("agent")
    if conversation.owner_id != acting.actor.id and conversation.local:
        async with hub.db.read() as conn:
            owner = await actor_store.get_actor_by_id(conn, conversation.owner_id)
            steward = (owner is not None and owner.bridge_network is not None
                       and await conv_store.is_participant(conn, conversation.id, acting.actor.id))
        if not steward:
            _require_owner(acting, conversation)
    else:
        _require_owner(acting, conversation)
    if target.type == "Application":
        raise UsageError("the instance actor takes part in no conversation")
    async with hub.db.write() as conn:
        added = await conv_store.put_participant(conn, conversation.id, target.id, added_by_id=acting.actor.id)
        if not added:
            return
        if target.bridge_network:
            # written to on their network, once its owner allows that network here
            await _add_channel(conn, conversation.id, target, origin=False)
        elif target.local:
            await conv_store.ensure_state(conn, conversation.id, target.id, at=utcnow())
        else:
            await queue_publish(conn, "backfill", conversation_id=conversation.id, actor_id=target.id)
        await audit(conn, acting, "conversation.add_participant", conversation_id=conversation.id, participant=target.uri)
    hub.wake()


async def remove_message(hub: Hub, acting: Acting, conversation: sa.Row, message_uri: str) -> None:
    """The owner takes a message out of the conversation; it stays in its author's outbox."""
    acting.require("agent")
    _require_owner(acting, conversation)
    async with hub.db.write() as conn:
        message = await msg_store.get_message_by_uri(conn, message_uri)
        if message is None or message.conversation_id != conversation.id:
            raise NotFound(f"no message {message_uri} in this conversation")
        if message.removed_at is None:
            await msg_store.update_message(conn, message.id, {"removed_at": utcnow()})
            await message_changed(conn, hub, "remove", message.id)
            await queue_publish(conn, "remove", message_id=message.id, conversation_id=conversation.id, activity_id=new_id())
            await audit(conn, acting, "message.remove", conversation_id=conversation.id, message=message_uri)
    hub.wake()


async def set_public(hub: Hub, acting: Acting, conversation: sa.Row, *, public: bool) -> None:
    """The owner makes the conversation readable by anyone (a page without an
    account, its container to any server), or private again. Private notes
    stay private either way; for an organization it takes an admin."""
    acting.require("admin" if acting.actor.type == "Organization" else "agent")
    _require_owner(acting, conversation)
    async with hub.db.write() as conn:
        await conv_store.update_conversation(conn, conversation.id, {"visibility": "public" if public else "direct"})
        await audit(conn, acting, "conversation.public" if public else "conversation.private",
                    conversation_id=conversation.id)


async def close(hub: Hub, acting: Acting, conversation: sa.Row, *, closed: bool = True) -> None:
    """The owner closes the conversation to new messages (or opens it again)."""
    acting.require("agent")
    _require_owner(acting, conversation)
    async with hub.db.write() as conn:
        await conv_store.update_conversation(conn, conversation.id, {"closed_at": utcnow() if closed else None})
        await audit(conn, acting, "conversation.close" if closed else "conversation.reopen", conversation_id=conversation.id)


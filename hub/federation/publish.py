"""``outbox.publish``: turn a local action into an activity and its deliveries.

One transaction stores the rendered activity (so every retry sends the same
bytes and ``/a/{id}`` can serve it) and queues one ``ap.deliver`` job per
distinct inbox, shared inboxes first. Deduplication keys make a re-run of a
half-finished publish (after a crash) add only what is missing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import sqlalchemy as sa

from hub import addressing
from hub.errors import HubError
from hub.federation import conversations, discovery, render
from hub.federation.documents import host_of
from hub.jobs import DONE, Outcome
from hub.store import actors as actor_store
from hub.store import bridges as bridge_store
from hub.store import conversations as conv_store
from hub.store import jobs as job_store
from hub.store import messages as msg_store
from hub.store import social
from hub.store.base import Conn, utcnow

if TYPE_CHECKING:
    from hub.federation import Federation

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024


async def handle_publish(fed: Federation, job: sa.Row) -> Outcome:
    p = job.payload
    verb = p["verb"]
    fn = _VERBS.get(verb)
    if fn is None:
        return Outcome("failed", error=f"unknown publish verb {verb!r}")
    await fed.hub.domain_blocks.fresh(fed.hub.db)
    await fn(fed, p)
    return DONE


async def _actors(fed: Federation, uris: list[str]) -> list[sa.Row]:
    """Actor rows for URIs, fetching the ones not cached yet (mentions of remote people)."""
    hub = fed.hub
    async with hub.db.read() as conn:
        rows = {r.uri: r for r in await actor_store.get_actors_by_uris(conn, uris)}
    for uri in uris:
        if uri not in rows and not addressing.is_public(uri):
            try:
                rows[uri] = await discovery.ensure_actor(fed, uri)
            except HubError as exc:
                log.warning("cannot address %s: %s", uri, exc)
    return [rows[u] for u in uris if u in rows]


def inbox_of(actor: sa.Row, *, shared: bool = True) -> str | None:
    if shared and actor.shared_inbox_uri:
        return actor.shared_inbox_uri
    return actor.inbox_uri


async def store_and_deliver(
    fed: Federation,
    conn: Conn,
    *,
    activity_id: str,
    doc: dict,
    signer: sa.Row,
    inboxes: list[str],
    object_uri: str | None = None,
) -> None:
    hub = fed.hub
    uri = hub.uris.activity(activity_id)
    doc["id"] = uri
    raw = render.dumps(doc).decode()
    if len(raw.encode()) > MAX_BODY:
        # Peers refuse large bodies (Mastodon: 1 MB, some far less); ours stay small.
        raise HubError(f"activity {uri} is larger than {MAX_BODY} bytes")
    obj = doc.get("object")
    await job_store.put_activity(
        conn,
        {
            "id": activity_id,
            "uri": uri,
            "type": doc["type"],
            "actor_uri": doc["actor"],
            "object_uri": object_uri or (obj if isinstance(obj, str) else (obj or {}).get("id")),
            "local": True,
            "raw": raw,
        },
    )
    blocks = hub.domain_blocks  # refreshed by the worker that runs this job; a blocked domain gets no job at all
    inboxes = _interleave_hosts([i for i in dict.fromkeys(inboxes)
                                 if i and not hub.uris.is_local(i) and not blocks.blocked(host_of(i))])
    gone = await job_store.list_gone_inboxes(conn, inboxes)
    now = utcnow()
    rows = [
        job_store.job_row(
            "ap.deliver",
            {"activity_id": activity_id, "inbox": inbox, "signer_id": signer.id},
            dedupe_key=f"ap.deliver:{activity_id}:{inbox}",
            host=host_of(inbox),
            state="gone" if inbox in gone else "queued",
            now=now,
        )
        for inbox in inboxes
    ]
    await job_store.put_jobs(conn, rows)
    log.info("publishing %s %s to %d inboxes", doc["type"], uri, len(rows))


def _interleave_hosts(inboxes: list[str]) -> list[str]:
    """Order deliveries round-robin across hosts, so workers claiming them in
    order keep many hosts busy at once instead of queueing behind one
    host's concurrency limit."""
    by_host: dict[str, list[str]] = {}
    for inbox in inboxes:
        by_host.setdefault(host_of(inbox), []).append(inbox)
    queues = list(by_host.values())
    out: list[str] = []
    for i in range(max((len(q) for q in queues), default=0)):
        out.extend(q[i] for q in queues if i < len(q))
    return out


async def _named_actors(fed: Federation, author: sa.Row, to: list[str], cc: list[str]) -> list[sa.Row]:
    """The actors an audience names (not Public, not the followers collection),
    fetched if need be: call it before opening a write transaction."""
    audience = dict.fromkeys([*to, *cc])
    return await _actors(fed, [u for u in audience if u != author.followers_uri and not addressing.is_public(u)])


async def _audience_inboxes(conn: Conn, author: sa.Row, to: list[str], cc: list[str], named: list[sa.Row]) -> list[str]:
    """Inboxes for an addressed audience: followers (if addressed) and named actors. Database only."""
    blocked = await social.list_blocked_ids(conn, author.id)
    inboxes: list[str] = []
    if author.followers_uri in to or author.followers_uri in cc:
        for f in await social.list_follower_targets(conn, author.id):
            if not f.local:
                inboxes.append(f.shared_inbox_uri or f.inbox_uri)
    for actor in named:
        if not actor.local and actor.id not in blocked:
            inboxes.append(inbox_of(actor))
    return inboxes


async def _message_context(conn: Conn, message: sa.Row) -> tuple[sa.Row, str | None]:
    author = await actor_store.get_actor_by_id(conn, message.actor_id)
    conv = await msg_store.get_conversation_by_id(conn, message.conversation_id) if message.conversation_id else None
    return author, conv.uri if conv else None


async def _publish_message(fed: Federation, p: dict) -> None:
    hub = fed.hub
    verb = p["verb"]
    async with hub.db.read() as conn:
        message = await msg_store.get_message_by_id(conn, p["message_id"])
        author, context_uri = await _message_context(conn, message)
        files = (await bridge_store.attachments_of(conn, [message.id]))[message.id]
    mentioned = await _actors(fed, list(message.mention_uris or []))
    to, cc = list(message.to_uris), list(message.cc_uris)
    if verb == "delete":
        doc = render.activity(
            "Delete", id="", actor=author.uri, object=render.tombstone_to_json(message, with_context=False),
            to=to, cc=cc, published=utcnow(),
        )
    else:
        note = render.note_to_json(hub, message, author_uri=author.uri, context_uri=context_uri, mentioned=mentioned,
                                   with_context=False, context_history=await _container_of(hub, message),
                                   attachments=files)
        doc = render.activity(
            "Create" if verb == "create" else "Update",
            id="", actor=author.uri, object=note, to=to, cc=cc,
            published=message.published_at if verb == "create" else message.edited_at,
            context=render.NOTE_CONTEXT,
        )
    if await conversations.publish_conversation_message(fed, p, message, doc):
        return
    named = await _named_actors(fed, author, to, cc)
    async with hub.db.write() as conn:  # no network I/O inside: it holds the write lock
        inboxes = await _audience_inboxes(conn, author, to, cc, named)
        await store_and_deliver(fed, conn, activity_id=p["activity_id"], doc=doc, signer=author, inboxes=inboxes)


async def _container_of(hub, message: sa.Row) -> str | None:
    """The FEP-171b container of a message's conversation, when this hub keeps it for its owner."""
    if not message.conversation_id:
        return None
    async with hub.db.read() as conn:
        conversation = await msg_store.get_conversation_by_id(conn, message.conversation_id)
        participants = await conv_store.list_participants(conn, conversation.id)
    return conversation.uri if participants and conversations.hosted_here(conversation, participants) else None


async def _pair(fed: Federation, a_id: str, b_id: str) -> tuple[sa.Row, sa.Row]:
    async with fed.hub.db.read() as conn:
        return await actor_store.get_actor_by_id(conn, a_id), await actor_store.get_actor_by_id(conn, b_id)


async def _publish_follow(fed: Federation, p: dict) -> None:
    follower, followee = await _pair(fed, p["follower_id"], p["followee_id"])
    uri = p["activity_uri"]
    doc = render.activity("Follow", id=uri, actor=follower.uri, object=followee.uri, to=[followee.uri])
    async with fed.hub.db.write() as conn:
        await store_and_deliver(
            fed, conn, activity_id=uri.rsplit("/", 1)[-1], doc=doc, signer=follower, inboxes=[followee.inbox_uri]
        )


async def _publish_follow_answer(fed: Federation, p: dict) -> None:
    follower, followee = await _pair(fed, p["follower_id"], p["followee_id"])
    type_ = {"accept_follow": "Accept", "reject_follow": "Reject"}.get(p["verb"], "Undo")
    obj = render.follow_object(p["follow_uri"], follower.uri, followee.uri)
    if type_ == "Undo":
        signer, target = follower, followee
    else:
        signer, target = followee, follower
    doc = render.activity(type_, id="", actor=signer.uri, object=obj, to=[target.uri])
    async with fed.hub.db.write() as conn:
        await store_and_deliver(fed, conn, activity_id=p["activity_id"], doc=doc, signer=signer, inboxes=[target.inbox_uri])


async def _publish_block(fed: Federation, p: dict) -> None:
    blocker, blocked = await _pair(fed, p["blocker_id"], p["blocked_id"])
    if p["verb"] == "block":
        uri = p["activity_uri"]
        activity_id = uri.rsplit("/", 1)[-1]
        doc = render.activity("Block", id=uri, actor=blocker.uri, object=blocked.uri, to=[blocked.uri])
    else:
        activity_id = p["activity_id"]
        inner = {"id": p["block_uri"], "type": "Block", "actor": blocker.uri, "object": blocked.uri}
        doc = render.activity("Undo", id="", actor=blocker.uri, object=inner, to=[blocked.uri])
    async with fed.hub.db.write() as conn:
        await store_and_deliver(fed, conn, activity_id=activity_id, doc=doc, signer=blocker, inboxes=[blocked.inbox_uri])


async def _publish_reaction(fed: Federation, p: dict) -> None:
    hub = fed.hub
    verb = p["verb"]
    kind = verb.removeprefix("undo_")
    async with hub.db.read() as conn:
        actor = await actor_store.get_actor_by_id(conn, p["actor_id"])
        message = await msg_store.get_message_by_id(conn, p["message_id"])
        author = await actor_store.get_actor_by_id(conn, message.actor_id)
    type_ = "Like" if kind == "like" else "Announce"
    if kind == "like":
        to, cc = [author.uri], []
    else:
        to, cc = [addressing.PUBLIC], [author.uri, actor.followers_uri]
    if verb.startswith("undo_"):
        inner = {"id": p["reaction_uri"], "type": type_, "actor": actor.uri, "object": message.uri}
        doc = render.activity("Undo", id="", actor=actor.uri, object=inner, to=to, cc=cc)
        activity_id = p["activity_id"]
    else:
        uri = p["activity_uri"]
        activity_id = uri.rsplit("/", 1)[-1]
        doc = render.activity(type_, id=uri, actor=actor.uri, object=message.uri, to=to, cc=cc, published=utcnow())
    named = await _named_actors(fed, actor, to, cc)
    async with hub.db.write() as conn:
        inboxes = await _audience_inboxes(conn, actor, to, cc, named)
        await store_and_deliver(fed, conn, activity_id=activity_id, doc=doc, signer=actor, inboxes=inboxes)


async def _publish_actor_update(fed: Federation, p: dict) -> None:
    hub = fed.hub
    async with hub.db.read() as conn:
        actor = await actor_store.get_actor_by_id(conn, p["actor_id"])
    doc = render.actor_to_json(hub, actor)
    doc.pop("@context", None)
    activity = render.activity(
        "Update", id="", actor=actor.uri, object=doc, to=[addressing.PUBLIC], cc=[actor.followers_uri],
        published=utcnow(), context=render.ACTOR_CONTEXT,
    )
    async with hub.db.write() as conn:
        inboxes = await _audience_inboxes(conn, actor, [addressing.PUBLIC], [actor.followers_uri], [])
        await store_and_deliver(fed, conn, activity_id=p["activity_id"], doc=activity, signer=actor, inboxes=inboxes)


_VERBS = {
    "create": _publish_message,
    "update": _publish_message,
    "delete": _publish_message,
    "follow": _publish_follow,
    "undo_follow": _publish_follow_answer,
    "accept_follow": _publish_follow_answer,
    "reject_follow": _publish_follow_answer,
    "block": _publish_block,
    "undo_block": _publish_block,
    "like": _publish_reaction,
    "undo_like": _publish_reaction,
    "announce": _publish_reaction,
    "undo_announce": _publish_reaction,
    "update_actor": _publish_actor_update,
    "add": lambda fed, p: conversations.publish_add(fed, p),
    "remove": lambda fed, p: conversations.publish_remove(fed, p),
    "backfill": lambda fed, p: conversations.publish_backfill(fed, p),
}


def _consent_verbs() -> None:
    from hub.consent.federation import VERBS
    from hub.moving import publish_move

    _VERBS.update(VERBS)
    _VERBS["move"] = publish_move
    from hub.leaving import publish_delete_actor

    _VERBS["delete_actor"] = publish_delete_actor


async def _publish_flag(fed: Federation, p: dict) -> None:
    """A report forwarded to the reported account's server: ``Flag`` from the instance actor (the
    reporter stays unnamed, as Mastodon does), naming the account and its reported posts."""
    hub = fed.hub
    async with hub.db.read() as conn:
        target = await actor_store.get_actor_by_id(conn, p["target_id"])
    inbox = (target.shared_inbox_uri or target.inbox_uri) if target is not None else None
    if not inbox:
        return
    doc = render.activity("Flag", id="", actor=fed.instance_actor.uri, object=p["objects"], to=[target.uri])
    doc["content"] = p.get("content") or ""
    async with hub.db.write() as conn:
        await store_and_deliver(fed, conn, activity_id=p["activity_id"], doc=doc, signer=fed.instance_actor,
                                inboxes=[inbox], object_uri=target.uri)


_VERBS["flag"] = _publish_flag
_consent_verbs()

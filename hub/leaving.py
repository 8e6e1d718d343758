"""Leaving for good: ``roundtable account delete USERNAME``.

In order: every consent grant the actor made is revoked (the organizations
hear ``Undo`` and read nothing more); the conversations it owns are closed for
the other participants; a ``Delete`` of the actor goes to its followers and to
everyone it shares a conversation with (signed with its key, which is kept for
that alone); then its data is erased: its messages (each becomes a
tombstone), private notes, profile items, follows, tokens and sessions, its
members' memberships and its login; the addresses it claimed on this hub's
bridges are forgotten and their bridged actors deleted with it; the people on
bridged networks who got its messages are told (``bridge.leave``: copies
withdrawn where the network can, one notice each). What stays is the tombstone of the actor
(its URI answers 410 Gone) so that nobody else can take the name and peers can
verify the ``Delete``. Nothing is kept for a retention period.
"""

from __future__ import annotations

import sqlalchemy as sa

from hub.context import Hub
from hub.errors import HubError
from hub.ids import new_id
from hub.inbox.access import Acting
from hub.store import actors as actor_store
from hub.store import bridges as bridge_store
from hub.store import consent as consent_store
from hub.store import conversations as conv_store
from hub.store import messages as msg_store
from hub.store import social
from hub.store.base import utcnow
from hub.store.jobs import job_row, put_jobs
from hub.store.schema import (
    accounts,
    actors,
    api_tokens,
    bridge_items,
    consent_reads,
    conversation_labels,
    conversation_participants,
    conversation_states,
    conversations,
    exports,
    memberships,
    messages,
    oauth_tokens,
    private_notes,
    profile_items,
    web_sessions,
)


def check_confirmation(acting: Acting, confirm: str | None) -> None:
    """Leaving cannot be undone: the caller types the account's username to say so."""
    from hub.errors import UsageError

    if (confirm or "").strip().lstrip("@").lower() != acting.actor.username:
        raise UsageError(f"type the account's username ({acting.actor.username}) to confirm")


async def delete_account(hub: Hub, acting: Acting) -> dict:
    from hub import consent
    from hub.inbox import conversations as conv_service

    acting.require("owner")
    actor = acting.actor
    summary = {"actor": actor.uri, "grants_revoked": 0, "conversations_closed": 0, "messages_erased": 0}
    async with hub.db.read() as conn:
        made = await consent_store.list_grants(conn, side="customer", customer_id=actor.id,
                                               states=("offered", "accepted"))
        orgs = {g.organization_id for g in made}
        owned = list((await conn.execute(sa.select(conversations).where(
            conversations.c.owner_id == actor.id, conversations.c.closed_at.is_(None)))).all())
    for org_id in orgs:
        async with hub.db.read() as conn:
            org = await actor_store.get_actor_by_id(conn, org_id)
        try:
            summary["grants_revoked"] += len(await consent.revoke(hub, acting, org))
        except HubError:
            pass
    for conv in owned:
        try:
            await conv_service.close(hub, acting, conv)
            summary["conversations_closed"] += 1
        except HubError:
            pass
    async with hub.db.write() as conn:
        conv_ids = list((await conn.execute(sa.select(conversation_participants.c.conversation_id).where(
            conversation_participants.c.actor_id == actor.id))).scalars())
        others = set()
        for conv_id in conv_ids:
            for p in await conv_store.list_participants(conn, conv_id):
                if p.id != actor.id:
                    others.add(p.id)
        # the Delete is rendered and queued now, while the followers are still known
        await put_jobs(conn, [job_row("outbox.publish", {"verb": "delete_actor", "actor_id": actor.id,
                                                         "activity_id": new_id(), "also_to": sorted(others)})])
        now = utcnow()
        # the addresses it claimed on this hub's bridges are its data too: what their bridged actors
        # wrote is erased with the rest, and the address is forgotten (mail from it later starts afresh)
        claimed = await bridge_store.identities_claimed_by(conn, actor.id)
        twins = await _twins(conn, claimed)
        authors = {actor.id, *(i.actor_id for i in claimed)}
        if hub.bridges is not None:
            from hub.bridges.core import queue_leaving

            summary["bridged_told"] = await queue_leaving(conn, hub, actor, conv_ids, authors,
                                                          {i.id for i in claimed + twins})
        await forget_identities(conn, claimed, twins, now)
        summary["identities_erased"] = len(claimed)
        files = await _erase_messages(conn, authors)
        summary["messages_erased"] = await msg_store.delete_messages_of_actors(conn, list(authors))
        await conn.execute(sa.delete(private_notes).where(private_notes.c.actor_id == actor.id))
        await conn.execute(sa.delete(profile_items).where(profile_items.c.actor_id == actor.id))
        # its inbox (status, labels), every read of its data (the log was for it), its archives
        states = sa.select(conversation_states.c.id).where(conversation_states.c.actor_id == actor.id)
        await conn.execute(sa.delete(conversation_labels).where(conversation_labels.c.state_id.in_(states)))
        await conn.execute(sa.delete(conversation_states).where(conversation_states.c.actor_id == actor.id))
        await conn.execute(sa.delete(consent_reads).where(consent_reads.c.customer_id == actor.id))
        from hub.store.schema import followed_tags

        await conn.execute(sa.delete(followed_tags).where(followed_tags.c.actor_id == actor.id))
        archives = list((await conn.execute(sa.select(exports.c.id).where(exports.c.actor_id == actor.id))).scalars())
        await conn.execute(sa.delete(exports).where(exports.c.actor_id == actor.id))
        account = await actor_store.get_account_by_username(conn, actor.username)
        await conn.execute(sa.update(actors).where(
            actors.c.id == actor.id).values(
            name=None, summary=None, fields=None, icon_url=None, also_known_as=None, deleted_at=now, updated_at=now,
            settings=None))
        await conn.execute(sa.delete(memberships).where(memberships.c.actor_id == actor.id))
        if account is not None:
            await conn.execute(sa.update(oauth_tokens).where(oauth_tokens.c.account_id == account.id)
                               .values(revoked_at=now))
            await conn.execute(sa.delete(api_tokens).where(api_tokens.c.account_id == account.id))
            await conn.execute(sa.delete(web_sessions).where(web_sessions.c.account_id == account.id))
            still = (await conn.execute(sa.select(memberships.c.id).where(
                memberships.c.account_id == account.id).limit(1))).first()
            if still is None:  # the login spoke only for this actor: it goes too
                await conn.execute(sa.delete(accounts).where(accounts.c.id == account.id))
    from hub import export, media

    for export_id in archives:
        export.file_of(hub.cfg, export_id).unlink(missing_ok=True)
    for sha in files:  # files no other message uses
        media.path_of(hub.cfg, sha).unlink(missing_ok=True)
    hub.wake()
    return summary


async def forget_claims_of_remote(conn, actor: sa.Row) -> set[str]:
    """An actor of another hub that holds claims here (an account that moved away with its addresses)
    was deleted: its addresses are forgotten here too, and what their bridged actors wrote is erased.
    Returns the SHA-256 of files nothing uses any more, for the caller to delete once committed."""
    claimed = await bridge_store.identities_claimed_by(conn, actor.id)
    if not claimed:
        return set()
    await forget_identities(conn, claimed, await _twins(conn, claimed), utcnow())
    authors = {i.actor_id for i in claimed}
    files = await _erase_messages(conn, authors)
    await msg_store.delete_messages_of_actors(conn, list(authors))
    return files


async def _twins(conn, claimed: list[sa.Row]) -> list[sa.Row]:
    """The ``unverified:`` twin of each claimed address (mail in its name that failed authentication):
    it names the address too."""
    out = []
    for ident in claimed:
        twin = await bridge_store.get_identity(conn, ident.network, "unverified:" + ident.remote_id)
        if twin is not None:
            out.append(twin)
    return out


async def forget_identities(conn, claimed: list[sa.Row], twins: list[sa.Row], now) -> None:
    """Claimed addresses of an account that leaves: the address is forgotten (the identity row stays,
    under an ``erased:`` id, for the message map), the raw mail from it goes, and its bridged actor is
    deleted as the account is (``Delete`` to everyone it wrote to; the caller erases what it wrote).
    The twins lose the address and their name; what was written under them was not the account's."""
    for ident in claimed + twins:
        await bridge_store.update_identity(conn, ident.id, {
            "claimed_actor_id": None, "remote_id": f"erased:{ident.id}", "display_name": None})
        address = ident.remote_id.removeprefix("unverified:")
        await conn.execute(sa.update(bridge_items).where(
            bridge_items.c.bridge == ident.network, sa.func.lower(bridge_items.c.sender) == address)
            .values(raw=b"", size=0, sender=None, recipients=None))
    for ident in twins:
        await conn.execute(sa.update(actors).where(actors.c.id == ident.actor_id).values(
            name=None, summary=None, icon_url=None, updated_at=now))
    for ident in claimed:
        wrote_in = (await conn.execute(sa.select(messages.c.conversation_id).distinct().where(
            messages.c.actor_id == ident.actor_id, messages.c.conversation_id.is_not(None)))).scalars().all()
        heard = set()
        for conv_id in wrote_in:
            heard.update(p.id for p in await conv_store.list_participants(conn, conv_id))
        heard.discard(ident.actor_id)
        await put_jobs(conn, [job_row("outbox.publish", {"verb": "delete_actor", "actor_id": ident.actor_id,
                                                         "activity_id": new_id(), "also_to": sorted(heard)})])
        await conn.execute(sa.update(actors).where(actors.c.id == ident.actor_id).values(
            name=None, summary=None, icon_url=None, deleted_at=now, updated_at=now))


async def _erase_messages(conn, authors: set[str]) -> set[str]:
    """Before the messages of ``authors`` become tombstones (``delete_messages_of_actors``): their
    attachments and uploads go (the SHA-256 of files nothing else uses is returned, for the caller to
    delete once committed) and the activities that carried them keep only their ids (a Tombstone in place
    of the note)."""
    import json

    from hub.store.schema import activities, attachments, media_uploads

    mine = sa.select(messages.c.id).where(messages.c.actor_id.in_(authors))
    shas = set((await conn.execute(sa.select(attachments.c.sha256).where(
        attachments.c.message_id.in_(mine), attachments.c.sha256.is_not(None)))).scalars())
    shas |= set((await conn.execute(sa.select(media_uploads.c.sha256).where(
        media_uploads.c.actor_id.in_(list(authors))))).scalars())  # uploads: avatars, media not yet posted
    await conn.execute(sa.delete(attachments).where(attachments.c.message_id.in_(mine)))
    await conn.execute(sa.delete(media_uploads).where(media_uploads.c.actor_id.in_(list(authors))))
    still = set()
    if shas:
        for table in (attachments, media_uploads):
            still |= set((await conn.execute(sa.select(table.c.sha256).where(
                table.c.sha256.in_(list(shas))))).scalars())
    uris = list((await conn.execute(sa.select(actors.c.uri).where(actors.c.id.in_(list(authors))))).scalars())
    notes = sa.select(messages.c.uri).where(messages.c.actor_id.in_(authors))
    rows = (await conn.execute(sa.select(activities.c.id, activities.c.uri, activities.c.type,
                                         activities.c.actor_uri, activities.c.object_uri).where(sa.or_(
        sa.and_(activities.c.actor_uri.in_(uris), activities.c.type.in_(("Create", "Update"))),
        sa.and_(activities.c.type == "Add", activities.c.object_uri.in_(notes)))))).all()
    for r in rows:
        await conn.execute(sa.update(activities).where(activities.c.id == r.id).values(raw=json.dumps({
            "id": r.uri, "type": r.type, "actor": r.actor_uri, "object": {"id": r.object_uri, "type": "Tombstone"}})))
    return shas - still


async def publish_delete_actor(fed, p: dict) -> None:
    """``Delete`` of the actor, to its followers and conversation partners; then its follows go."""
    from hub import addressing
    from hub.federation import render
    from hub.federation.publish import inbox_of, store_and_deliver

    hub = fed.hub
    async with hub.db.read() as conn:
        actor = await actor_store.get_actor_by_id(conn, p["actor_id"])
        followers = await social.list_follower_targets(conn, actor.id)
        others = [await actor_store.get_actor_by_id(conn, i) for i in p.get("also_to") or []]
    inboxes = [f.shared_inbox_uri or f.inbox_uri for f in followers if not f.local]
    inboxes += [inbox_of(o) for o in others if o is not None and not o.local]
    doc = render.activity("Delete", id="", actor=actor.uri, object=actor.uri, to=[addressing.PUBLIC])
    async with hub.db.write() as conn:
        await store_and_deliver(fed, conn, activity_id=p["activity_id"], doc=doc, signer=actor, inboxes=inboxes)
        await social.delete_follows_of_actor(conn, actor.id)

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
from hub.store import social
from hub.store.base import utcnow
from hub.store.jobs import job_row, put_jobs
from hub.store.schema import (
    accounts,
    actors,
    api_tokens,
    conversation_participants,
    conversations,
    memberships,
    messages,
    oauth_tokens,
    private_notes,
    profile_items,
    web_sessions,
)


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
        authors = {actor.id, *(i.actor_id for i in claimed)}
        if hub.bridges is not None:
            from hub.bridges.core import queue_leaving

            summary["bridged_told"] = await queue_leaving(conn, hub, actor, conv_ids, authors,
                                                          {i.id for i in claimed})
        for ident in claimed:
            await bridge_store.update_identity(conn, ident.id, {
                "claimed_actor_id": None, "remote_id": f"erased:{ident.id}", "display_name": None})
            # its bridged actor goes the same way as the account: peers erase what it wrote
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
        summary["identities_erased"] = len(claimed)
        result = await conn.execute(sa.update(messages).where(messages.c.actor_id.in_(authors),
                                                              messages.c.deleted_at.is_(None))
                                    .values(deleted_at=now, content_html="", content_text="", summary=None,
                                            raw=None))
        summary["messages_erased"] = result.rowcount
        await conn.execute(sa.delete(private_notes).where(private_notes.c.actor_id == actor.id))
        await conn.execute(sa.delete(profile_items).where(profile_items.c.actor_id == actor.id))
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
    hub.wake()
    return summary


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

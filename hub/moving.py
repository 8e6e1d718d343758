"""Moving an account: aliases (``alsoKnownAs``), ``Move`` (sent and received) and what a Move changes
on each hub: followers follow the new actor, which takes the old one's place in its conversations."""

from __future__ import annotations

import sqlalchemy as sa

from hub.context import Hub
from hub.errors import UsageError
from hub.ids import new_id
from hub.inbox.access import Acting, audit
from hub.store import actors as actor_store
from hub.store.jobs import job_row, put_jobs

MAX_ALIASES = 10


async def old_account(hub: Hub, ref: str) -> sa.Row | str:
    """The account an alias names: resolved (a handle or URI), or, when its hub cannot be reached any
    more, the actor URI itself (from the archive's manifest)."""
    from hub.errors import HubError

    try:
        return await hub.resolve_handle(ref.strip())
    except HubError:
        if not ref.strip().startswith(("https://", "http://")):
            raise
        return ref.strip()


async def add_alias(hub: Hub, acting: Acting, old: sa.Row | str) -> list[str]:
    """Name another account (usually the one moved from) as this actor's ``alsoKnownAs``; followers hear it.
    ``old`` is its actor row, or its URI when its hub cannot be reached any more."""
    acting.require("owner")
    old_uri = old if isinstance(old, str) else old.uri
    if old_uri == acting.actor.uri:
        raise UsageError("an account is not its own alias")
    aliases = list(acting.actor.also_known_as or [])
    if old_uri not in aliases:
        if len(aliases) >= MAX_ALIASES:
            raise UsageError(f"at most {MAX_ALIASES} aliases")
        aliases.append(old_uri)
    async with hub.db.write() as conn:
        await actor_store.update_actor(conn, acting.actor.id, {"also_known_as": aliases})
        await put_jobs(conn, [job_row("outbox.publish", {"verb": "update_actor", "actor_id": acting.actor.id,
                                                         "activity_id": new_id()})])
        await audit(conn, acting, "actor.alias", alias=old_uri)
    hub.wake()
    return aliases


COOLDOWN_DAYS = 30  # as Mastodon: an account that moved cannot move again for a month


async def move(hub: Hub, acting: Acting, target: sa.Row) -> dict:
    """Point every follower and participant from this actor to ``target``: the old actor gets ``movedTo``
    and sends ``Move`` (Mastodon's checks: the target names this actor in ``alsoKnownAs``; a cooldown)."""
    import datetime as dt

    from hub.federation import discovery
    from hub.store import conversations as conv_store
    from hub.store import social
    from hub.store.base import utcnow
    from hub.store.schema import conversation_participants

    acting.require("owner")
    actor = acting.actor
    if target.id == actor.id:
        raise UsageError("an account cannot move to itself")
    if not target.local and hub.federation is not None:
        target = await discovery.ensure_actor(hub.federation, target.uri, refresh=True)
    if actor.uri not in (target.also_known_as or []):
        raise UsageError(f"{target.uri} does not name {actor.uri} in alsoKnownAs: "
                         "on the new account, run `roundtable alias add NEW OLD_HANDLE` first")
    if target.moved_to:
        raise UsageError(f"{target.uri} has itself moved to {target.moved_to}: move there instead")
    moved_at = (actor.settings or {}).get("moved_at")
    if moved_at and dt.datetime.fromisoformat(moved_at) > utcnow() - dt.timedelta(days=COOLDOWN_DAYS):
        raise UsageError(f"this account moved less than {COOLDOWN_DAYS} days ago")
    async with hub.db.write() as conn:
        await actor_store.update_actor(conn, actor.id, {
            "moved_to": target.uri, "settings": {**(actor.settings or {}), "moved_at": utcnow().isoformat()}})
        followers = await social.list_follower_targets(conn, actor.id)
        conv_ids = list((await conn.execute(sa.select(conversation_participants.c.conversation_id).where(
            conversation_participants.c.actor_id == actor.id))).scalars())
        others = set()
        for conv_id in conv_ids:
            for p in await conv_store.list_participants(conn, conv_id):
                if p.id != actor.id:
                    others.add(p.id)
        await put_jobs(conn, [
            job_row("outbox.publish", {"verb": "update_actor", "actor_id": actor.id, "activity_id": new_id()}),
            job_row("outbox.publish", {"verb": "move", "actor_id": actor.id, "target": target.uri,
                                       "activity_id": new_id(), "also_to": sorted(others)})])
        await audit(conn, acting, "actor.move", target=target.uri)
    hub.wake()
    return {"actor": actor.uri, "moved_to": target.uri, "followers": len(followers),
            "conversations": len(conv_ids)}


async def publish_move(fed, p: dict) -> None:
    """``Move`` to the followers' inboxes and to everyone the actor shares a conversation with."""
    from hub.federation import render
    from hub.federation.publish import inbox_of, store_and_deliver
    from hub.store import social

    hub = fed.hub
    async with hub.db.read() as conn:
        actor = await actor_store.get_actor_by_id(conn, p["actor_id"])
        inboxes: list[str] = []
        follower_rows = await social.list_follower_targets(conn, actor.id)
        others = [await actor_store.get_actor_by_id(conn, i) for i in p.get("also_to") or []]
    for row in follower_rows:
        inbox = getattr(row, "shared_inbox_uri", None) or getattr(row, "inbox_uri", None)
        if inbox:
            inboxes.append(inbox)
    inboxes += [inbox_of(o) for o in others if o is not None and not o.local]
    doc = render.activity("Move", id="", actor=actor.uri, object=actor.uri, target=p["target"],
                          to=[actor.followers_uri], cc=[o.uri for o in others if o is not None])
    async with hub.db.write() as conn:
        await store_and_deliver(fed, conn, activity_id=p["activity_id"], doc=doc, signer=actor, inboxes=inboxes)
    # followers and participants on this same hub move here and now
    await follow_move(hub, actor, p["target"])


async def follow_move(hub: Hub, origin: sa.Row, target_uri: str) -> dict:
    """This hub's side of a Move: local followers of ``origin`` follow the target instead, and the target
    takes ``origin``'s place (and ownership) in the conversations it was in."""
    from hub import outbox
    from hub.errors import HubError
    from hub.store import conversations as conv_store
    from hub.store import social
    from hub.store.schema import conversation_participants, conversations, remote_identities

    async with hub.db.read() as conn:
        target = await actor_store.get_actor_by_uri(conn, target_uri)
    if target is None and hub.federation is not None:
        from hub.federation import discovery

        target = await discovery.ensure_actor(hub.federation, target_uri)
    if target is None:
        raise UsageError(f"unknown target {target_uri}")
    moved = 0
    async with hub.db.read() as conn:
        local_followers = await social.list_local_followers_of(conn, origin.id)
    for follower_id in local_followers:
        async with hub.db.read() as conn:
            follower = await actor_store.get_actor_by_id(conn, follower_id)
        try:
            await outbox.follow(hub, follower, target)
            await outbox.unfollow(hub, follower, origin)
            moved += 1
        except HubError:
            continue
    async with hub.db.write() as conn:
        # identities on this hub's bridges that the account claimed (here, or before an earlier move) stay
        # claimed, by its new self: mail from them is written by their bridged actor (this hub cannot write
        # as a remote actor) in conversations the new actor takes part in, and what others write goes on
        # reaching the address
        await conn.execute(sa.update(remote_identities).where(remote_identities.c.claimed_actor_id == origin.id)
                           .values(claimed_actor_id=target.id))
        conv_ids = list((await conn.execute(sa.select(conversation_participants.c.conversation_id).where(
            conversation_participants.c.actor_id == origin.id))).scalars())
        for conv_id in conv_ids:
            # where both took part, the old self leaves and the new one keeps its place (as owner where
            # the old one owned)
            await conv_store.replace_participant(conn, conv_id, origin.id, target.id)
            await conn.execute(sa.update(conversations).where(conversations.c.id == conv_id,
                                                              conversations.c.owner_id == origin.id)
                               .values(owner_id=target.id, local=bool(target.local)))
    hub.wake()
    return {"followers": moved, "conversations": len(conv_ids)}


async def handle_move(fed, doc: dict, actor: sa.Row, _inbox: str | None):
    """An inbound ``Move``: the actor moves itself, and the target names it in ``alsoKnownAs`` (fetched fresh)."""
    from hub.errors import BadRequest
    from hub.federation import discovery
    from hub.federation import documents as docs
    from hub.jobs import DONE

    origin_uri, target_uri = docs.id_of(doc.get("object")), docs.id_of(doc.get("target"))
    if origin_uri != actor.uri or not target_uri:
        raise BadRequest("a Move moves its own actor to a target")
    target = await discovery.ensure_actor(fed, target_uri, refresh=True)
    if actor.uri not in (target.also_known_as or []):
        raise BadRequest("the Move's target does not name the actor in alsoKnownAs")
    async with fed.hub.db.write() as conn:
        await actor_store.update_actor(conn, actor.id, {"moved_to": target.uri})
    await follow_move(fed.hub, actor, target.uri)
    return DONE


async def pull_move(hub: Hub, acting: Acting, archive: str) -> dict:
    """FEP-7628's pull mode, for when the old hub is gone: the new hub sends the ``Move`` itself, signed with
    the old actor's key from the export archive, to the followers and conversation partners the archive
    lists. Their hubs check it as any Move (the signature with the old key they know, the target's
    ``alsoKnownAs``)."""
    import json
    import zipfile

    from hub import sealing
    from hub.errors import HubError
    from hub.federation import discovery, render
    from hub.federation.documents import host_of
    from hub.store import jobs as job_store
    from hub.store.base import utcnow

    acting.require("owner")
    new = acting.actor
    try:
        with zipfile.ZipFile(archive) as z:
            old = json.loads(z.read("actor.json"))
            followers = json.loads(z.read("followers.json")).get("orderedItems") or []
            partners = set()
            for name in z.namelist():
                if name.startswith("conversations/"):
                    for p in json.loads(z.read(name)).get("participants") or []:
                        if isinstance(p, dict) and isinstance(p.get("id"), str):
                            partners.add(p["id"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{archive} is not a Roundtable export archive: {exc}") from None
    old_uri, pem = old.get("id"), old.get("privateKeyPem")
    key_id = (old.get("publicKey") or {}).get("id") if isinstance(old.get("publicKey"), dict) else None
    if not pem or not key_id:
        raise UsageError("the archive holds no private key (exported with --without-private-key): a pull-mode "
                         "Move is signed with it")
    if old_uri not in (new.also_known_as or []):
        raise UsageError(f"{new.uri} does not name {old_uri} in alsoKnownAs: run `roundtable alias add` first")
    inboxes = []
    for uri in sorted({*followers, *partners} - {old_uri, new.uri}):
        try:
            row = await discovery.ensure_actor(hub.federation, uri)
        except HubError:
            continue
        if not row.local and (row.shared_inbox_uri or row.inbox_uri):
            inboxes.append(row.shared_inbox_uri or row.inbox_uri)
    activity_id = new_id()
    # The id is on the old actor's origin (peers require that of an activity), as a fragment of the actor
    doc = render.activity("Move", id=f"{old_uri}#moves/{activity_id}", actor=old_uri, object=old_uri,
                          target=new.uri, to=[old_uri.rstrip("/") + "/followers"])
    sealed = sealing.seal(hub.cfg, pem)
    async with hub.db.write() as conn:
        await job_store.put_activity(conn, {"id": activity_id, "uri": doc["id"], "type": "Move", "actor_uri": old_uri,
                                            "object_uri": old_uri, "local": True,
                                            "raw": render.dumps(doc).decode()})
        now = utcnow()
        await job_store.put_jobs(conn, [job_store.job_row(
            "ap.deliver", {"activity_id": activity_id, "inbox": inbox, "signer_id": new.id, "sealed_key": sealed,
                           "key_id": key_id}, dedupe_key=f"ap.deliver:{activity_id}:{inbox}", host=host_of(inbox),
            now=now) for inbox in dict.fromkeys(inboxes)])
        await audit(conn, acting, "actor.move.pull", origin=old_uri)
    async with hub.db.read() as conn:
        known_old = await actor_store.get_actor_by_uri(conn, old_uri)
    if known_old is not None:  # followers of the old actor on this very hub
        await follow_move(hub, known_old, new.uri)
    hub.wake()
    return {"actor": old_uri, "moved_to": new.uri, "inboxes": len(set(inboxes)), "mode": "pull"}

"""SQL of bridges: their state, bridged identities and claims, the message
map, the networks and channels of conversations, reply tokens, raw inbound
items and attachments."""

from __future__ import annotations

import datetime as dt
import secrets

import sqlalchemy as sa

from hub.ids import new_id
from hub.store.base import Conn, clean_text, insert_ignore, utcnow
from hub.store.schema import (
    actors,
    attachments,
    bridge_items,
    bridge_messages,
    bridges,
    conversation_channels,
    conversation_networks,
    conversation_participants,
    identity_claims,
    messages,
    remote_identities,
    reply_tokens,
)

# --- bridges -----------------------------------------------------------------------------------


async def get_bridge(conn: Conn, name: str, *, for_update: bool = False) -> sa.Row | None:
    """``for_update`` locks the row (PostgreSQL) until the transaction ends, for read-modify-writes of settings."""
    stmt = sa.select(bridges).where(bridges.c.name == name)
    if for_update:
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).first()


async def get_bridge_by_token_hash(conn: Conn, token_hash: str) -> sa.Row | None:
    return (await conn.execute(sa.select(bridges).where(bridges.c.token_hash == token_hash))).first()


async def list_bridges(conn: Conn, *, owner_actor_id: str | None = None) -> list[sa.Row]:
    stmt = sa.select(bridges).order_by(bridges.c.name)
    if owner_actor_id is not None:
        stmt = stmt.where(bridges.c.owner_actor_id == owner_actor_id)
    return list((await conn.execute(stmt)).all())


async def put_bridge(conn: Conn, values: dict) -> bool:
    now = utcnow()
    row = {"state": "stopped", "state_at": now, "created_at": now, **values}
    return bool(await insert_ignore(conn, bridges, [row], returning=bridges.c.name))


async def update_bridge(conn: Conn, name: str, values: dict) -> None:
    await conn.execute(sa.update(bridges).where(bridges.c.name == name).values(**values))


async def set_bridge_state(conn: Conn, name: str, state: str, detail: str | None) -> None:
    await update_bridge(conn, name, {"state": state, "state_detail": clean_text(detail, 1000), "state_at": utcnow()})


async def network_in_use(conn: Conn, network: str) -> bool:
    """Whether a network name has ever had people or items: such a name is
    never given to another bridge (it would inherit their conversations)."""
    for table in (remote_identities, bridge_items):
        col = table.c.network if table is remote_identities else table.c.bridge
        if (await conn.execute(sa.select(sa.literal(1)).where(col == network).limit(1))).first() is not None:
            return True
    return False


async def delete_bridge(conn: Conn, name: str) -> bool:
    return (await conn.execute(sa.delete(bridges).where(bridges.c.name == name))).rowcount > 0


# --- identities ----------------------------------------------------------------------------------


async def get_identity(conn: Conn, network: str, remote_id: str) -> sa.Row | None:
    stmt = sa.select(remote_identities).where(
        remote_identities.c.network == network, remote_identities.c.remote_id == remote_id
    )
    return (await conn.execute(stmt)).first()


async def get_identity_by_id(conn: Conn, identity_id: str) -> sa.Row | None:
    return (await conn.execute(sa.select(remote_identities).where(remote_identities.c.id == identity_id))).first()


async def get_identity_of_puppet(conn: Conn, actor_id: str) -> sa.Row | None:
    return (await conn.execute(sa.select(remote_identities).where(remote_identities.c.actor_id == actor_id))).first()


async def put_identity(conn: Conn, *, network: str, remote_id: str, actor_id: str, display_name: str | None) -> str:
    identity_id = new_id()
    await conn.execute(
        sa.insert(remote_identities).values(
            id=identity_id, network=network, remote_id=remote_id, actor_id=actor_id,
            display_name=clean_text(display_name, 255), created_at=utcnow(),
        )
    )
    return identity_id


async def addresses_of(conn: Conn, actor_ids: set[str]) -> dict[str, dict]:
    """``{bridged actor id: {network, address}}``: who a bridged actor is on its
    network, for the people in a conversation with them (never published)."""
    if not actor_ids:
        return {}
    stmt = sa.select(remote_identities.c.actor_id, remote_identities.c.network, remote_identities.c.remote_id).where(
        remote_identities.c.actor_id.in_(list(actor_ids))
    )
    return {a: {"network": n, "address": r.removeprefix("unverified:")} for a, n, r in await conn.execute(stmt)}


async def update_identity(conn: Conn, identity_id: str, values: dict) -> None:
    await conn.execute(sa.update(remote_identities).where(remote_identities.c.id == identity_id).values(**values))


async def identities_claimed_by(conn: Conn, actor_id: str) -> list[sa.Row]:
    stmt = (
        sa.select(remote_identities)
        .where(remote_identities.c.claimed_actor_id == actor_id)
        .order_by(remote_identities.c.claimed_at)
    )
    return list((await conn.execute(stmt)).all())


async def put_claim(conn: Conn, *, identity_id: str, actor_id: str, code_hash: str, expires_at: dt.datetime) -> str:
    claim_id = new_id()
    await conn.execute(
        sa.insert(identity_claims).values(
            id=claim_id, identity_id=identity_id, actor_id=actor_id, code_hash=code_hash, attempts=0,
            expires_at=expires_at, created_at=utcnow(),
        )
    )
    return claim_id


async def open_claims(conn: Conn, identity_id: str, actor_id: str, now: dt.datetime) -> list[sa.Row]:
    stmt = (
        sa.select(identity_claims)
        .where(
            identity_claims.c.identity_id == identity_id,
            identity_claims.c.actor_id == actor_id,
            identity_claims.c.confirmed_at.is_(None),
            identity_claims.c.expires_at > now,
        )
        .order_by(identity_claims.c.created_at.desc())
    )
    return list((await conn.execute(stmt)).all())


async def count_recent_claims(conn: Conn, identity_id: str, since: dt.datetime) -> int:
    stmt = sa.select(sa.func.count()).select_from(identity_claims).where(
        identity_claims.c.identity_id == identity_id, identity_claims.c.created_at > since
    )
    return int((await conn.execute(stmt)).scalar_one())


async def update_claim(conn: Conn, claim_id: str, values: dict) -> None:
    await conn.execute(sa.update(identity_claims).where(identity_claims.c.id == claim_id).values(**values))


# --- the message map ---------------------------------------------------------------------------------


async def get_mapped(conn: Conn, network: str, remote_id: str, part: int = 0) -> sa.Row | None:
    stmt = sa.select(bridge_messages).where(
        bridge_messages.c.network == network, bridge_messages.c.remote_id == remote_id, bridge_messages.c.part == part
    )
    return (await conn.execute(stmt)).first()


async def get_mapped_by_txn(conn: Conn, txn_id: str) -> sa.Row | None:
    return (await conn.execute(sa.select(bridge_messages).where(bridge_messages.c.txn_id == txn_id))).first()


async def mapped_for_message(conn: Conn, message_id: str) -> list[sa.Row]:
    stmt = sa.select(bridge_messages).where(bridge_messages.c.message_id == message_id).order_by(bridge_messages.c.created_at)
    return list((await conn.execute(stmt)).all())


async def put_mapping(
    conn: Conn, *, network: str, remote_id: str, message_id: str, direction: str, identity_id: str | None,
    txn_id: str, part: int = 0, edit_count: int = 0, hops: int = 0,
) -> bool:
    """Record that ``message_id`` is ``remote_id`` on ``network``; False if
    that remote id was already mapped (nothing is bridged twice)."""
    row = {
        "id": new_id(), "network": network, "remote_id": remote_id[:1000], "part": part, "message_id": message_id,
        "direction": direction, "identity_id": identity_id, "edit_count": edit_count, "txn_id": txn_id,
        "hops": max(0, min(int(hops or 0), 100)), "created_at": utcnow(),
    }
    return bool(await insert_ignore(conn, bridge_messages, [row], returning=bridge_messages.c.id))


async def thread_remote_ids(conn: Conn, conversation_id: str, network: str, *, limit: int = 20) -> list[str]:
    """Remote ids of a conversation's messages on ``network``, oldest first
    (the last ``limit``): what a reply there refers to."""
    stmt = (
        sa.select(bridge_messages.c.remote_id)
        .join(messages, messages.c.id == bridge_messages.c.message_id)
        .where(messages.c.conversation_id == conversation_id, bridge_messages.c.network == network)
        .order_by(bridge_messages.c.created_at.desc(), bridge_messages.c.id.desc())
        .limit(limit)
    )
    return list(reversed([r for (r,) in await conn.execute(stmt)]))


# --- networks and channels of conversations -------------------------------------------------------


async def allow_network(conn: Conn, conversation_id: str, network: str, *, origin: bool = False,
                        allowed_by_id: str | None = None) -> None:
    await insert_ignore(conn, conversation_networks, [{
        "conversation_id": conversation_id, "network": network, "origin": origin, "allowed_by_id": allowed_by_id,
        "created_at": utcnow(),
    }])


async def disallow_network(conn: Conn, conversation_id: str, network: str) -> bool:
    """Withdraw an allowance; the origin network cannot be withdrawn."""
    result = await conn.execute(
        sa.delete(conversation_networks).where(
            conversation_networks.c.conversation_id == conversation_id,
            conversation_networks.c.network == network,
            conversation_networks.c.origin.is_(False),
        )
    )
    return result.rowcount > 0


async def networks_of(conn: Conn, conversation_id: str) -> dict[str, bool]:
    """``{network: origin}`` of the networks allowed for a conversation."""
    stmt = sa.select(conversation_networks.c.network, conversation_networks.c.origin).where(
        conversation_networks.c.conversation_id == conversation_id
    )
    return {n: bool(o) for n, o in await conn.execute(stmt)}


async def add_channel(conn: Conn, conversation_id: str, identity_id: str) -> None:
    await insert_ignore(conn, conversation_channels, [
        {"conversation_id": conversation_id, "identity_id": identity_id, "created_at": utcnow()}
    ])


async def open_channel_conversations(conn: Conn, identity_id: str) -> list[str]:
    """Conversations an identity is a channel of, most recently active first."""
    from hub.store.schema import conversations

    stmt = (
        sa.select(conversation_channels.c.conversation_id)
        .join(conversations, conversations.c.id == conversation_channels.c.conversation_id)
        .where(conversation_channels.c.identity_id == identity_id, conversations.c.closed_at.is_(None))
        .order_by(conversations.c.last_message_at.desc())
        .limit(20)
    )
    return [c for (c,) in await conn.execute(stmt)]


async def is_channel(conn: Conn, conversation_id: str, identity_id: str) -> bool:
    stmt = sa.select(conversation_channels.c.identity_id).where(
        conversation_channels.c.conversation_id == conversation_id, conversation_channels.c.identity_id == identity_id
    )
    return (await conn.execute(stmt)).first() is not None


async def channel_targets(conn: Conn, conversation_id: str) -> list[sa.Row]:
    """The conversation's channels whose person still takes part (as the
    bridged actor, or as the customer who claimed it, or as the bridged actor
    of a customer who moved away)."""
    participant_ids = sa.select(conversation_participants.c.actor_id).where(
        conversation_participants.c.conversation_id == conversation_id
    )
    # claimed by an account that has moved to another hub: its bridged actor speaks for it here
    claimed_elsewhere = sa.exists().where(actors.c.id == remote_identities.c.claimed_actor_id, actors.c.local.is_(False))
    stmt = (
        sa.select(remote_identities)
        .join(conversation_channels, conversation_channels.c.identity_id == remote_identities.c.id)
        .where(
            conversation_channels.c.conversation_id == conversation_id,
            sa.or_(
                sa.and_(sa.or_(remote_identities.c.claimed_actor_id.is_(None), claimed_elsewhere),
                        remote_identities.c.actor_id.in_(participant_ids)),
                remote_identities.c.claimed_actor_id.in_(participant_ids),
            ),
        )
        .order_by(conversation_channels.c.created_at)
    )
    return list((await conn.execute(stmt)).all())


async def conversations_of_actor(conn: Conn, actor_id: str) -> list[str]:
    stmt = sa.select(conversation_participants.c.conversation_id).where(conversation_participants.c.actor_id == actor_id)
    return [c for (c,) in await conn.execute(stmt)]


# --- reply tokens ------------------------------------------------------------------------------------


async def reply_token(conn: Conn, conversation_id: str, actor_id: str) -> str:
    """The conversation's reply token for one local actor's address (made once)."""
    stmt = sa.select(reply_tokens.c.token).where(
        reply_tokens.c.conversation_id == conversation_id, reply_tokens.c.actor_id == actor_id
    )
    token = (await conn.execute(stmt)).scalar()
    if token is None:
        token = secrets.token_hex(8)
        await insert_ignore(conn, reply_tokens, [{
            "token": token, "conversation_id": conversation_id, "actor_id": actor_id, "created_at": utcnow(),
        }])
        token = (await conn.execute(stmt)).scalar()
    return token


async def get_reply_token(conn: Conn, token: str) -> sa.Row | None:
    return (await conn.execute(sa.select(reply_tokens).where(reply_tokens.c.token == token.lower()))).first()


# --- raw inbound items ---------------------------------------------------------------------------------


async def put_item(conn: Conn, *, bridge: str, raw: bytes, sender: str | None, recipients: list[str],
                   status: str = "queued", flags: list[str] | None = None, reason: str | None = None) -> str:
    item_id = new_id()
    now = utcnow()
    await conn.execute(
        sa.insert(bridge_items).values(
            id=item_id, bridge=bridge, raw=raw, size=len(raw), sender=clean_text(sender, 512), recipients=recipients,
            status=status, flags=flags or [], reason=clean_text(reason, 2000), created_at=now, updated_at=now,
        )
    )
    return item_id


async def get_item(conn: Conn, item_id: str) -> sa.Row | None:
    return (await conn.execute(sa.select(bridge_items).where(bridge_items.c.id == item_id))).first()


async def update_item(conn: Conn, item_id: str, values: dict) -> None:
    if "reason" in values:
        values = {**values, "reason": clean_text(values["reason"], 2000)}
    await conn.execute(sa.update(bridge_items).where(bridge_items.c.id == item_id).values(updated_at=utcnow(), **values))


async def list_items(conn: Conn, *, bridge: str | None = None, status: str | None = None, limit: int = 50) -> list[sa.Row]:
    stmt = sa.select(
        bridge_items.c.id, bridge_items.c.bridge, bridge_items.c.size, bridge_items.c.sender, bridge_items.c.recipients,
        bridge_items.c.status, bridge_items.c.flags, bridge_items.c.reason, bridge_items.c.message_id,
        bridge_items.c.created_at,
    ).order_by(bridge_items.c.id.desc()).limit(limit)
    if bridge:
        stmt = stmt.where(bridge_items.c.bridge == bridge)
    if status:
        stmt = stmt.where(bridge_items.c.status == status)
    return list((await conn.execute(stmt)).all())


# --- attachments -----------------------------------------------------------------------------------------


async def put_attachment(conn: Conn, *, message_id: str, filename: str, content_type: str, size: int, sha256: str,
                         attachment_id: str | None = None, description: str | None = None) -> str:
    attachment_id = attachment_id or new_id()
    await conn.execute(
        sa.insert(attachments).values(
            id=attachment_id, message_id=message_id, filename=clean_text(filename, 255) or "attachment",
            content_type=content_type[:255], size=size, sha256=sha256, created_at=utcnow(),
            description=clean_text(description, 1500) if description else None,
        )
    )
    return attachment_id


async def put_remote_attachment(conn: Conn, *, message_id: str, url: str, filename: str, content_type: str,
                                description: str | None, attachment_id: str | None = None) -> str:
    attachment_id = attachment_id or new_id()
    await conn.execute(
        sa.insert(attachments).values(
            id=attachment_id, message_id=message_id, filename=clean_text(filename, 255) or "attachment",
            content_type=content_type[:255], size=None, sha256=None, remote_url=url[:2048],
            description=clean_text(description, 1500) if description else None, created_at=utcnow(),
        )
    )
    return attachment_id


async def attachments_of(conn: Conn, message_ids: list[str]) -> dict[str, list[sa.Row]]:
    out: dict[str, list[sa.Row]] = {m: [] for m in message_ids}
    if message_ids:
        stmt = sa.select(attachments).where(attachments.c.message_id.in_(message_ids)).order_by(attachments.c.id)
        for row in await conn.execute(stmt):
            out[row.message_id].append(row)
    return out


async def get_attachment(conn: Conn, attachment_id: str) -> sa.Row | None:
    return (await conn.execute(sa.select(attachments).where(attachments.c.id == attachment_id))).first()


async def puppet_actor_ids(conn: Conn, actor_ids: list[str]) -> set[str]:
    if not actor_ids:
        return set()
    stmt = sa.select(actors.c.id).where(actors.c.id.in_(actor_ids), actors.c.bridge_network.is_not(None))
    return {i for (i,) in await conn.execute(stmt)}

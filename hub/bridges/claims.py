"""Claiming a bridged identity: proving that an address is yours.

A customer (or an organization: the same call for both) asks to claim
``(network, remote id)``; the hub sends a one-time code *to that identity*
through its bridge, marked as automatic; whoever can read it there and types
it back proves control. Codes are random, stored only as a hash, expire
after :data:`CODE_TTL`, allow :data:`MAX_ATTEMPTS` wrong tries, and at most
:data:`MAX_CODES_PER_HOUR` are sent to one identity.

On confirmation every conversation the identity's bridged actor took part in
becomes the claimer's: they take its place (and its role, so a conversation
that the bridged customer owned is now owned by the customer's account), get
their own inbox state of it, and from then on messages from that identity
are written by the claimer. Messages already published keep their author
(their URIs are public); the bridged actor stays as their author.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

from hub.bridges.base import Outbound
from hub.errors import Conflict, Forbidden, NotFound, UsageError
from hub.ids import new_id
from hub.inbox.access import Acting, audit
from hub.store import bridges as bridge_store
from hub.store import conversations as conv_store
from hub.store import messages as msg_store
from hub.store.base import utcnow

if TYPE_CHECKING:
    from hub.context import Hub

CODE_TTL = dt.timedelta(minutes=30)
MAX_ATTEMPTS = 5
MAX_CODES_PER_HOUR = 5
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


def normalise(network: str, remote_id: str) -> str:
    remote_id = remote_id.strip()
    if network == "email" or "@" in remote_id and " " not in remote_id:
        remote_id = remote_id.lower()
    if not remote_id or len(remote_id) > 512 or remote_id.startswith("unverified:"):
        raise UsageError(f"not a remote id: {remote_id!r}")
    return remote_id


def _hash(claim_id: str, code: str) -> str:
    return hashlib.sha256(f"{claim_id}:{code.strip().upper().replace('-', '')}".encode()).hexdigest()


async def start(hub: Hub, acting: Acting, network: str, remote_id: str) -> dict:
    """Send a confirmation code to the identity; the claim's description."""
    from hub.bridges.core import _new_keys, deliver_outbound, ensure_identity

    acting.require("admin")
    remote_id = normalise(network, remote_id)
    async with hub.db.read() as conn:
        bridge = await bridge_store.get_bridge(conn, network)
        if bridge is None:
            raise NotFound(f"no bridge named {network!r}")
        identity = await bridge_store.get_identity(conn, network, remote_id)
    if identity is not None and identity.claimed_actor_id == acting.actor.id:
        raise Conflict(f"{remote_id} on {network} is already yours")
    if identity is not None and identity.claimed_actor_id is not None:
        raise Conflict(f"{remote_id} on {network} has been claimed by another account")
    keys = await _new_keys() if identity is None else None
    code = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    now = utcnow()
    async with hub.db.write() as conn:
        identity = await ensure_identity(conn, hub, network, remote_id, None, keys)
        if await bridge_store.count_recent_claims(conn, identity.id, now - dt.timedelta(hours=1)) >= MAX_CODES_PER_HOUR:
            raise Forbidden("too many codes were sent to that address in the last hour; try again later")
        claim_id = await bridge_store.put_claim(conn, identity_id=identity.id, actor_id=acting.actor.id, code_hash="",
                                                expires_at=now + CODE_TTL)
        # the hash binds the code to its claim
        await bridge_store.update_claim(conn, claim_id, {"code_hash": _hash(claim_id, code)})
        await audit(conn, acting, "identity.claim", network=network, remote_id=remote_id)
    pretty = f"{code[:4]}-{code[4:]}"
    who = acting.actor.name or acting.actor.username
    text = (
        f"Someone signed in as @{acting.actor.username}@{hub.cfg.domain} ({who}) asked to link this address "
        f"to their Roundtable account, so that your conversations written from it become theirs.\n\n"
        f"If that was you, the code is: {pretty}\n\n"
        f"Enter it where you asked for it; it is valid for {int(CODE_TTL.total_seconds() // 60)} minutes.\n"
        f"If it was not you, ignore this message: nothing changes without the code."
    )
    from hub import text as textmod

    outbound = Outbound(
        network=network, txn_id=new_id(), to=remote_id, to_name=identity.display_name,
        from_username=acting.actor.username, from_name=f"{hub.cfg.domain}", text=text,
        html=textmod.plain_to_html(text), subject=f"Your code to link this address: {pretty}", automatic=True,
    )
    await deliver_outbound(hub.bridges, bridge, outbound)
    return {"network": network, "remote_id": remote_id, "claim": claim_id, "expires_at": (now + CODE_TTL).isoformat(),
            "state": "code_sent"}


async def confirm(hub: Hub, acting: Acting, network: str, remote_id: str, code: str) -> dict:
    """Check the code; on success the identity and its conversations are the claimer's."""
    acting.require("admin")
    remote_id = normalise(network, remote_id)
    now = utcnow()
    wrong: str | None = None
    async with hub.db.write() as conn:
        identity = await bridge_store.get_identity(conn, network, remote_id)
        claims = await bridge_store.open_claims(conn, identity.id, acting.actor.id, now) if identity else []
        claims = [c for c in claims if c.attempts < MAX_ATTEMPTS]
        if identity is None or not claims:
            raise NotFound("no open claim of that identity: ask for a new code")
        claim = claims[0]
        if not hmac.compare_digest(claim.code_hash, _hash(claim.id, code)):
            await bridge_store.update_claim(conn, claim.id, {"attempts": claim.attempts + 1})
            left = MAX_ATTEMPTS - claim.attempts - 1
            wrong = f"wrong code ({left} attempt{'s' if left != 1 else ''} left)"
    if wrong is not None:  # raised after the transaction, so that the failed attempt counts
        raise Forbidden(wrong)
    async with hub.db.write() as conn:
        identity = await bridge_store.get_identity(conn, network, remote_id)
        claim = (await bridge_store.open_claims(conn, identity.id, acting.actor.id, now))[0]
        if identity.claimed_actor_id not in (None, acting.actor.id):
            raise Conflict(f"{remote_id} on {network} has been claimed by another account")
        await bridge_store.update_claim(conn, claim.id, {"confirmed_at": now})
        await bridge_store.update_identity(conn, identity.id, {"claimed_actor_id": acting.actor.id, "claimed_at": now})
        moved = await take_over(conn, identity.actor_id, acting.actor.id)
        await audit(conn, acting, "identity.confirm", network=network, remote_id=remote_id, conversations=len(moved))
    return {"network": network, "remote_id": remote_id, "claimed_by": acting.actor.uri, "state": "claimed",
            "conversations": moved}


async def take_over(conn, puppet_id: str, actor_id: str) -> list[str]:
    """``actor_id`` takes the bridged actor's place in its conversations; their URIs."""
    moved = []
    for conversation_id in await bridge_store.conversations_of_actor(conn, puppet_id):
        conversation = await msg_store.get_conversation_by_id(conn, conversation_id)
        await conv_store.replace_participant(conn, conversation_id, puppet_id, actor_id)
        if conversation.owner_id == puppet_id:
            await conv_store.update_conversation(conn, conversation_id, {"owner_id": actor_id})
        await conv_store.ensure_state(conn, conversation_id, actor_id, at=utcnow())
        moved.append(conversation.uri)
    return moved


async def list_claimed(hub: Hub, acting: Acting) -> list[dict]:
    async with hub.db.read() as conn:
        rows = await bridge_store.identities_claimed_by(conn, acting.actor.id)
    return [{"network": r.network, "remote_id": r.remote_id, "claimed_at": r.claimed_at.isoformat()} for r in rows]

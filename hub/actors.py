"""Local actors: customers (``Person``) and organizations (``Organization``).

Both kinds are created, stored and served by the same code; ``kind`` is a
label, never a branch that gives one kind a power the other lacks. Each
actor gets an RSA-2048 key pair and a login account of the same name (the
account owns the actor; more members come with organizations' inboxes).
"""

from __future__ import annotations

import asyncio
import re

import sqlalchemy as sa

from hub import crypto
from hub.context import Hub
from hub.errors import Conflict, NotFound, UsageError
from hub.ids import new_id
from hub.store import actors as actor_store
from hub.store.base import utcnow

KINDS = {"person": "Person", "organization": "Organization"}
INSTANCE_USERNAME = "instance.actor"
_USERNAME = re.compile(r"^[a-z0-9_]{1,30}$")
RESERVED = frozenset({"actor", "instance", "admin", "root", "inbox", "outbox", "static", "api", "about", "system"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def validate_username(username: str) -> str:
    name = username.strip().lower()
    if not _USERNAME.match(name):
        raise UsageError(f"invalid username {username!r}: use 1-30 letters, digits or underscores")
    if name in RESERVED:
        raise UsageError(f"username {name!r} is reserved")
    if "__" in name:
        raise UsageError(f"invalid username {username!r}: a double underscore is reserved for bridged people")
    return name


def hash_password(password: str) -> str:
    from hub.passwords import HASHER

    return HASHER.hash(password)


def _actor_values(hub: Hub, *, actor_id: str, username: str, type_: str, private_pem: str) -> dict:
    u = hub.uris
    now = utcnow()
    if type_ == "Application":
        uri = u.instance_actor()
        return {
            "id": actor_id,
            "uri": uri,
            "type": type_,
            "local": True,
            "username": username,
            "domain": None,
            "name": hub.cfg.instance_name,
            "url": hub.cfg.base_url + "/",
            "manually_approves_followers": True,
            "discoverable": False,
            "inbox_uri": f"{uri}/inbox",
            "outbox_uri": f"{uri}/outbox",
            "shared_inbox_uri": u.shared_inbox(),
            "private_key_pem": private_pem,
            "published_at": now,
        }
    return {
        "id": actor_id,
        "uri": u.actor(username),
        "type": type_,
        "local": True,
        "username": username,
        "domain": None,
        "url": u.actor(username),
        "icon_url": u.avatar(),
        "manually_approves_followers": False,
        "discoverable": True,
        "fields": [],
        "also_known_as": [],
        "inbox_uri": u.inbox(username),
        "outbox_uri": u.outbox(username),
        "shared_inbox_uri": u.shared_inbox(),
        "followers_uri": u.followers(username),
        "following_uri": u.following(username),
        "featured_uri": u.featured(username),
        "private_key_pem": private_pem,
        "published_at": now,
    }


async def create_local_actor(
    hub: Hub,
    username: str,
    *,
    kind: str,
    name: str | None = None,
    email: str | None = None,
    password: str | None = None,
) -> sa.Row:
    """Create an actor and its owner account. Raises Conflict if the name is taken."""
    username = validate_username(username)
    type_ = KINDS.get(kind)
    if type_ is None:
        raise UsageError(f"invalid kind {kind!r}: use person or organization")
    if email is not None and not _EMAIL.match(email):
        raise UsageError(f"invalid email address {email!r}")
    if password is not None and len(password) < 8:
        raise UsageError("password must be at least 8 characters")
    private_pem, public_pem = await asyncio.to_thread(crypto.generate_rsa_pem)
    password_hash = await asyncio.to_thread(hash_password, password) if password else None
    actor_id = new_id()
    values = _actor_values(hub, actor_id=actor_id, username=username, type_=type_, private_pem=private_pem)
    values["name"] = name or username
    async with hub.db.write() as conn:
        if await actor_store.get_local_actor(conn, username) is not None:
            raise Conflict(f"username {username!r} is already taken")
        if await actor_store.get_account_by_username(conn, username) is not None:
            raise Conflict(f"username {username!r} is already taken")
        if email and await actor_store.get_account_by_email(conn, email) is not None:
            raise Conflict(f"email address {email!r} is already in use")
        await actor_store.put_actor(conn, values)
        await actor_store.put_key(
            conn, key_id=hub.uris.key_id(username), actor_id=actor_id, kind="rsa", public_key=public_pem
        )
        account_id = new_id()
        await actor_store.put_account(
            conn, {"id": account_id, "username": username, "email": email, "password_hash": password_hash}
        )
        # A customer wants to hear when someone answers: their own login is
        # mailed new messages unless they choose otherwise (an organization's
        # members choose for themselves; /settings/notifications).
        await actor_store.put_membership(
            conn, {"id": new_id(), "account_id": account_id, "actor_id": actor_id, "role": "owner",
                   "notify_messages": type_ == "Person"}
        )
        return await actor_store.get_actor_by_id(conn, actor_id)


async def ensure_instance_actor(hub: Hub) -> sa.Row:
    """The ``Application`` actor at ``/actor`` that signs server-level fetches."""
    async with hub.db.read() as conn:
        row = await actor_store.get_actor_by_uri(conn, hub.uris.instance_actor())
    if row is not None:
        return row
    private_pem, public_pem = await asyncio.to_thread(crypto.generate_rsa_pem)
    actor_id = new_id()
    values = _actor_values(
        hub, actor_id=actor_id, username=INSTANCE_USERNAME, type_="Application", private_pem=private_pem
    )
    async with hub.db.write() as conn:
        row = await actor_store.get_actor_by_uri(conn, hub.uris.instance_actor())
        if row is not None:
            return row
        await actor_store.put_actor(conn, values)
        await actor_store.put_key(
            conn, key_id=hub.uris.instance_key_id(), actor_id=actor_id, kind="rsa", public_key=public_pem
        )
        return await actor_store.get_actor_by_id(conn, actor_id)


async def get_local_actor(hub: Hub, username: str) -> sa.Row:
    async with hub.db.read() as conn:
        row = await actor_store.get_local_actor(conn, username)
    if row is None or row.type == "Application":
        raise NotFound(f"no local actor named {username!r}")
    return row


def signing_key(hub: Hub, actor: sa.Row) -> tuple[str, crypto.PrivateKey]:
    """The key id and private key an actor signs with."""
    if not actor.local or not actor.private_key_pem:
        raise ValueError("only local actors sign")
    key_id = hub.uris.instance_key_id() if actor.type == "Application" else hub.uris.key_id(actor.username)
    return key_id, hub.keys.private(actor.private_key_pem)


PROFILE_FIELDS = ("name", "summary", "manually_approves_followers", "discoverable", "fields", "icon_url")


async def update_profile(hub: Hub, actor: sa.Row, **changes) -> sa.Row:
    """Change profile fields; followers get an ``Update`` of the actor."""
    from hub import outbox  # outbox imports this module

    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise UsageError(f"unknown profile fields: {', '.join(sorted(unknown))}")
    if "fields" in changes:
        fields = changes["fields"]
        if len(fields) > 8:
            raise UsageError("at most 8 profile fields")
        changes["fields"] = [{"name": str(f["name"])[:255], "value": str(f["value"])[:2048]} for f in fields]
    async with hub.db.write() as conn:
        await actor_store.update_actor(conn, actor.id, changes)
        row = await actor_store.get_actor_by_id(conn, actor.id)
        await outbox.queue_publish(conn, hub, "update_actor", actor_id=actor.id, activity_id=new_id())
        if "fields" in changes:
            from hub import links

            await links.queue(conn, actor.id)  # rel="me" links: verified again
    hub.wake()
    return row


async def update_settings(hub: Hub, actor: sa.Row, settings: dict) -> None:
    """Local settings (not federated): the agent signature and the like."""
    async with hub.db.write() as conn:
        await actor_store.update_actor(conn, actor.id, {"settings": settings})

"""Who is acting, for whom, with which role; and the audit log of it.

Every actor, customer or organization, is worked by its members: accounts
with a role (``owner`` > ``admin`` > ``agent``). A member acts only for actors
it is a member of. Every read and action of a member on an actor's
conversations goes to that actor's audit log. The same rules hold for a
customer's household as for an organization's support team.
"""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from hub.context import Hub
from hub.errors import Forbidden, NotFound, UsageError
from hub.ids import new_id
from hub.store import actors as actor_store
from hub.store import org as org_store
from hub.store.base import Conn

ROLES = {"agent": 1, "admin": 2, "owner": 3}


@dataclasses.dataclass(frozen=True, slots=True)
class Acting:
    actor: sa.Row
    """The actor spoken for."""
    account: sa.Row | None
    """The member doing it."""
    role: str

    @property
    def account_id(self) -> str | None:
        return self.account.id if self.account is not None else None

    @property
    def member(self) -> str | None:
        return self.account.username if self.account is not None else None

    def require(self, role: str) -> None:
        if ROLES[self.role] < ROLES[role]:
            raise Forbidden(f"{self.member or 'this login'} needs the {role} role for @{self.actor.username}")


async def acting_as(hub: Hub, actor_username: str, member_username: str | None = None) -> Acting:
    """``member_username`` acting for the local actor ``actor_username``.

    Without a member, the actor's own login (the account of the same name
    that was made with it) acts, as its owner.
    """
    async with hub.db.read() as conn:
        actor = await actor_store.get_local_actor(conn, actor_username)
        if actor is None or actor.type == "Application":
            raise NotFound(f"no local actor named {actor_username!r}")
        account = await actor_store.get_account_by_username(conn, member_username or actor.username)
        if account is None:
            raise NotFound(f"no login named {member_username or actor.username!r}")
        membership = await org_store.get_membership(conn, account_id=account.id, actor_id=actor.id)
    if membership is None:
        raise Forbidden(f"{account.username} is not a member of @{actor.username}")
    return Acting(actor=actor, account=account, role=membership.role)


async def acting_for_account(hub: Hub, account: sa.Row, actor_username: str) -> Acting:
    """An authenticated account (API token) acting for one of its actors."""
    async with hub.db.read() as conn:
        actor = await actor_store.get_local_actor(conn, actor_username)
        membership = None
        if actor is not None and actor.type != "Application":
            membership = await org_store.get_membership(conn, account_id=account.id, actor_id=actor.id)
    if actor is None or membership is None:
        # The same answer whether the actor exists or not: no probing.
        raise Forbidden(f"{account.username} is not a member of @{actor_username}")
    return Acting(actor=actor, account=account, role=membership.role)


async def audit(conn: Conn, acting: Acting, action: str, *, conversation_id: str | None = None, **detail) -> None:
    await org_store.put_audit(
        conn, actor_id=acting.actor.id, account_id=acting.account_id, action=action,
        conversation_id=conversation_id, detail=detail or None,
    )


# --- members --------------------------------------------------------------------------------


async def add_member(hub: Hub, acting: Acting, username: str, *, role: str) -> sa.Row:
    """Make the person login ``username`` a member of ``acting.actor``."""
    if role not in ROLES:
        raise UsageError(f"invalid role {role!r}: use {', '.join(ROLES)}")
    acting.require("admin")
    if ROLES[role] > ROLES[acting.role]:
        raise Forbidden(f"an {acting.role} cannot make an {role}")
    async with hub.db.write() as conn:
        account = await actor_store.get_account_by_username(conn, username)
        if account is None:
            raise NotFound(f"no login named {username!r}")
        person = await actor_store.get_local_actor(conn, username)
        if person is None or person.type != "Person":
            raise UsageError(f"{username!r} is not a person's login")
        existing = await org_store.get_membership(conn, account_id=account.id, actor_id=acting.actor.id)
        if existing is not None:
            if existing.role != role:
                await org_store.set_membership_role(conn, existing.id, role)
                await audit(conn, acting, "member.role", member=username, role=role)
        else:
            await actor_store.put_membership(
                conn, {"id": new_id(), "account_id": account.id, "actor_id": acting.actor.id, "role": role}
            )
            await audit(conn, acting, "member.add", member=username, role=role)
        return await org_store.get_membership(conn, account_id=account.id, actor_id=acting.actor.id)


async def _member(conn, acting: Acting, username: str) -> tuple[sa.Row, sa.Row]:
    """The login ``username`` and its membership of ``acting.actor``; NotFound if it is no member."""
    account = await actor_store.get_account_by_username(conn, username)
    membership = (
        await org_store.get_membership(conn, account_id=account.id, actor_id=acting.actor.id) if account else None
    )
    if membership is None:
        raise NotFound(f"{username} is not a member of @{acting.actor.username}")
    return account, membership


async def remove_member(hub: Hub, acting: Acting, username: str) -> None:
    acting.require("admin")
    async with hub.db.write() as conn:
        account, membership = await _member(conn, acting, username)
        if ROLES[membership.role] > ROLES[acting.role]:
            raise Forbidden(f"an {acting.role} cannot remove an {membership.role}")
        if membership.role == "owner" and await org_store.count_owners(conn, acting.actor.id) <= 1:
            raise UsageError("the last owner cannot be removed")
        await org_store.delete_membership(conn, membership.id)
        from hub.store import mastodon as client_store

        await client_store.revoke_tokens_of_account(conn, account.id, actor_id=acting.actor.id)  # its apps too
        await audit(conn, acting, "member.remove", member=username)


async def list_members(hub: Hub, acting: Acting) -> list[dict]:
    acting.require("agent")
    async with hub.db.write() as conn:
        rows = await actor_store.list_memberships_of_actor(conn, acting.actor.id)
        await audit(conn, acting, "member.list")
    return [{"username": r.username, "role": r.role, "since": r.created_at.isoformat(),
             "apps": bool(r.app_access) or r.role in ("owner", "admin") or r.username == acting.actor.username}
            for r in rows]


async def set_app_access(hub: Hub, acting: Acting, username: str, *, allow: bool) -> None:
    """Let a member speak as ``acting.actor`` from fediverse apps (its own OAuth token), or stop it:
    denying revokes the tokens that member holds for this actor at once. Admins and owners always may."""
    from hub.store import mastodon as client_store

    acting.require("admin")
    async with hub.db.write() as conn:
        account, membership = await _member(conn, acting, username)
        await org_store.set_app_access(conn, membership.id, allow)
        if not allow and membership.role == "agent":
            await client_store.revoke_tokens_of_account(conn, account.id, actor_id=acting.actor.id)
        await audit(conn, acting, "member.apps", member=username, allowed=allow)

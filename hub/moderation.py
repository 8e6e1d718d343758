"""Running an instance: its operators (admins), the remote domains it
refuses (domain blocks), the reports (``Flag``) other servers send, and the
federation status operators watch, with the retries they may order.

Domain blocks apply everywhere through ``DomainBlocks``: the inbox refuses a
blocked domain's activities before fetching any key, the HTTP client
refuses to fetch from or deliver to it (so a queued delivery ends as a
permanent failure instead of being sent). The set is read from the database
and kept for ``REFRESH_S`` seconds, so a block made by the command line in
another process applies within that time (at once in the process that made it).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING

import sqlalchemy as sa

from hub.errors import Forbidden, NotFound, UsageError
from hub.store import actors as actor_store
from hub.store import moderation as mod_store
from hub.store.base import utcnow

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from hub.context import Hub
    from hub.db import Database

REFRESH_S = 10.0


class DomainBlocks:
    """The blocked domains, as a set kept fresh from the database."""

    def __init__(self) -> None:
        self.domains: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")

    async def fresh(self, db: Database, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._loaded_at < REFRESH_S:
            return
        async with db.read() as conn:
            self.domains = frozenset(await mod_store.blocked_domains(conn))
        self._loaded_at = time.monotonic()

    def blocked(self, netloc: str | None) -> bool:
        """Whether a host (``host`` or ``host:port``) is blocked: the entry
        names the host or a domain above it (``example.com`` blocks
        ``social.example.com``); an entry with a port names just that one."""
        if not self.domains or not netloc:
            return False
        netloc = netloc.lower().rstrip(".")
        if netloc in self.domains:
            return True
        host = netloc
        if host.startswith("["):
            host = host[1:].split("]", 1)[0]
        elif host.count(":") == 1:
            host = host.split(":", 1)[0]
        parts = host.split(".")
        return any(".".join(parts[i:]) in self.domains for i in range(len(parts)))


def normal_domain(value: str) -> str:
    """``https://Social.Example.com/@x`` → ``social.example.com``; IDNs in ASCII."""
    value = (value or "").strip().lower()
    if "://" in value:
        value = value.split("://", 1)[1]
    value = value.split("/", 1)[0].split("?", 1)[0].lstrip("@").rstrip(".")
    if "@" in value:
        value = value.rsplit("@", 1)[1]
    if not value or any(c.isspace() for c in value) or len(value) > 255:
        raise UsageError("give a domain, such as spam.example")
    host, sep, port = value.partition(":")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise UsageError(f"invalid domain {value!r}") from None
    if sep and not port.isdigit():
        raise UsageError(f"invalid domain {value!r}")
    return host + (sep + port if sep else "")


# --- admins ---------------------------------------------------------------------------------------


async def require_admin(hub: Hub, account_id: str | None):
    async with hub.db.read() as conn:
        account = await actor_store.get_account_by_id(conn, account_id) if account_id else None
    if account is None or not account.is_admin:
        raise Forbidden("this is for the instance's administrators")
    return account


async def set_admin(hub: Hub, username: str, is_admin: bool) -> None:
    async with hub.db.write() as conn:
        account = await actor_store.get_account_by_username(conn, username)
        if account is None:
            raise NotFound(f"no login {username!r}")
        await mod_store.set_admin(conn, account.id, is_admin)


async def list_admins(hub: Hub) -> list[dict]:
    async with hub.db.read() as conn:
        return [{"username": r.username, "email": r.email} for r in await mod_store.list_admins(conn)]


# --- domain blocks --------------------------------------------------------------------------------


async def block_domain(hub: Hub, domain: str, *, reason: str | None = None, by_account_id: str | None = None) -> str:
    domain = normal_domain(domain)
    own = hub.cfg.domain.lower()
    if domain == own or own.endswith("." + domain) or own.split(":", 1)[0] == domain:
        raise UsageError("this server cannot block its own domain")
    async with hub.db.write() as conn:
        if not await mod_store.put_domain_block(conn, domain, reason=reason, created_by_id=by_account_id):
            raise UsageError(f"{domain} is blocked already")
    await hub.domain_blocks.fresh(hub.db, force=True)
    await sever_follows(hub, domain)
    return domain


async def sever_follows(hub: Hub, domain: str) -> int:
    """Follows between our actors and actors of blocked domains end (both ways), as Mastodon's suspension
    does: nothing would be delivered over them any more. Conversations stay: they are their owners'."""
    from hub.store.schema import actors, follows

    async with hub.db.write() as conn:
        host = domain.split(":", 1)[0] if domain.count(":") == 1 else domain
        like = "%" + host.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        remote = [(i, d) for i, d in await conn.execute(  # the SQL narrows, blocked() decides
            sa.select(actors.c.id, actors.c.domain).where(actors.c.local.is_(False),
                                                          actors.c.domain.ilike(like, escape="\\")))]
        gone = [i for i, d in remote if hub.domain_blocks.blocked(d)]
        severed = 0
        for start in range(0, len(gone), 500):
            chunk = gone[start:start + 500]
            result = await conn.execute(sa.delete(follows).where(
                sa.or_(follows.c.follower_id.in_(chunk), follows.c.followee_id.in_(chunk))))
            severed += result.rowcount or 0
    if severed:
        log.info("domain block: %d follows with blocked domains ended", severed)
    return severed


async def unblock_domain(hub: Hub, domain: str) -> str:
    domain = normal_domain(domain)
    async with hub.db.write() as conn:
        if not await mod_store.delete_domain_block(conn, domain):
            raise NotFound(f"{domain} is not blocked")
    await hub.domain_blocks.fresh(hub.db, force=True)
    return domain


async def list_domain_blocks(hub: Hub) -> list[dict]:
    async with hub.db.read() as conn:
        return [{"domain": r.domain, "reason": r.reason, "created_by": r.created_by, "created_at": r.created_at.isoformat()}
                for r in await mod_store.list_domain_blocks(conn)]


# --- reports --------------------------------------------------------------------------------------


def report_dict(r) -> dict:
    return {"id": r.id, "uri": r.uri, "reporter": r.reporter_uri, "targets": list(r.target_uris or []),
            "content": r.content, "created_at": r.created_at.isoformat(),
            "resolved_at": r.resolved_at.isoformat() if r.resolved_at else None,
            "resolved_by": getattr(r, "resolved_by", None)}


async def list_reports(hub: Hub, *, resolved: bool = False) -> list[dict]:
    async with hub.db.read() as conn:
        return [report_dict(r) for r in await mod_store.list_reports(conn, resolved=resolved)]


async def resolve_report(hub: Hub, report_id: str, *, by_account_id: str | None, resolved: bool = True) -> None:
    async with hub.db.write() as conn:
        if not await mod_store.resolve_report(conn, report_id, by_account_id, resolved=resolved):
            raise NotFound("no such report")


# --- federation status ----------------------------------------------------------------------------

FAILING_WINDOW = dt.timedelta(days=7)


async def federation_status(hub: Hub) -> dict:
    async with hub.db.read() as conn:
        counts = await mod_store.job_counts(conn)
        hosts = await mod_store.failing_hosts(conn, since=utcnow() - FAILING_WINDOW)
        dead = await mod_store.list_dead_inboxes(conn)
        failed = await mod_store.list_failed_jobs(conn)
    queued = sum(r.count for r in counts if r.state in ("queued", "running"))
    deliveries = sum(r.count for r in counts if r.kind == "ap.deliver" and r.state in ("queued", "running"))
    return {
        "queue_depth": queued,
        "delivery_queue_depth": deliveries,
        "jobs": [{"kind": r.kind, "state": r.state, "count": r.count} for r in counts],
        "failing_hosts": hosts,
        "dead_inboxes": [{"uri": r.uri, "gone_at": r.gone_at, "last_status": r.last_status} for r in dead],
        "failed_jobs": [dict(r._mapping) for r in failed],
    }


async def retry_job(hub: Hub, job_id: str) -> None:
    async with hub.db.write() as conn:
        if not await mod_store.retry_job(conn, job_id):
            raise NotFound("no such job waiting or failed (a job that succeeded is never sent again)")
    hub.wake()


async def retry_host(hub: Hub, host: str) -> int:
    async with hub.db.write() as conn:
        n = await mod_store.retry_host(conn, host)
    hub.wake()
    return n


async def revive_inbox(hub: Hub, uri: str) -> int:
    async with hub.db.write() as conn:
        n = await mod_store.revive_inbox(conn, uri)
    hub.wake()
    return n

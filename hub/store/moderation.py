"""The instance's operators' tables: admins, domain blocks, received reports,
and the federation status they watch (delivery queue, failing hosts, dead
inboxes) with the retries they may order."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from hub.ids import new_id
from hub.store.base import Conn, clean_text, insert_ignore, utcnow
from hub.store.schema import accounts, domain_blocks, inboxes, jobs, reports

# --- admins ---------------------------------------------------------------------------------------


async def set_admin(conn: Conn, account_id: str, is_admin: bool) -> None:
    await conn.execute(sa.update(accounts).where(accounts.c.id == account_id).values(is_admin=is_admin))


async def list_admins(conn: Conn) -> list[sa.Row]:
    stmt = sa.select(accounts.c.id, accounts.c.username, accounts.c.email).where(accounts.c.is_admin.is_(True))
    return list((await conn.execute(stmt.order_by(accounts.c.username))).all())


# --- domain blocks --------------------------------------------------------------------------------


async def list_domain_blocks(conn: Conn) -> list[sa.Row]:
    stmt = (
        sa.select(domain_blocks, accounts.c.username.label("created_by"))
        .outerjoin(accounts, accounts.c.id == domain_blocks.c.created_by_id)
        .order_by(domain_blocks.c.domain)
    )
    return list((await conn.execute(stmt)).all())


async def blocked_domains(conn: Conn) -> set[str]:
    return {d for (d,) in await conn.execute(sa.select(domain_blocks.c.domain))}


async def put_domain_block(conn: Conn, domain: str, *, reason: str | None, created_by_id: str | None) -> bool:
    """False when the domain was blocked already (the first reason stays)."""
    row = {"domain": domain, "reason": clean_text(reason, 2000), "created_by_id": created_by_id, "created_at": utcnow()}
    return bool(await insert_ignore(conn, domain_blocks, [row], returning=domain_blocks.c.domain))


async def delete_domain_block(conn: Conn, domain: str) -> bool:
    return (await conn.execute(sa.delete(domain_blocks).where(domain_blocks.c.domain == domain))).rowcount > 0


# --- reports --------------------------------------------------------------------------------------


async def put_report(conn: Conn, *, uri: str | None, reporter_uri: str | None, target_uris: list[str],
                     content: str | None, raw: dict | None) -> str | None:
    """Store a report once (by its activity's id); None when it was already here."""
    row = {"id": new_id(), "uri": uri, "reporter_uri": reporter_uri, "target_uris": target_uris,
           "content": clean_text(content, 5000), "raw": raw, "created_at": utcnow()}
    done = await insert_ignore(conn, reports, [row], returning=reports.c.id)
    return done[0] if done else None


async def list_reports(conn: Conn, *, resolved: bool, limit: int = 100) -> list[sa.Row]:
    stmt = (
        sa.select(reports, accounts.c.username.label("resolved_by"))
        .outerjoin(accounts, accounts.c.id == reports.c.resolved_by_id)
        .where(reports.c.resolved_at.is_not(None) if resolved else reports.c.resolved_at.is_(None))
        .order_by(reports.c.created_at.desc(), reports.c.id.desc())
        .limit(limit)
    )
    return list((await conn.execute(stmt)).all())


async def get_report_by_id(conn: Conn, report_id: str) -> sa.Row | None:
    return (await conn.execute(sa.select(reports).where(reports.c.id == report_id))).first()


async def resolve_report(conn: Conn, report_id: str, account_id: str | None, *, resolved: bool = True) -> bool:
    values = {"resolved_at": utcnow(), "resolved_by_id": account_id} if resolved else {"resolved_at": None,
                                                                                        "resolved_by_id": None}
    return (await conn.execute(sa.update(reports).where(reports.c.id == report_id).values(**values))).rowcount > 0


# --- federation status ----------------------------------------------------------------------------


async def job_counts(conn: Conn) -> list[sa.Row]:
    """``(kind, state, count)`` of the jobs not done."""
    stmt = (
        sa.select(jobs.c.kind, jobs.c.state, sa.func.count().label("count"))
        .where(jobs.c.state != "done")
        .group_by(jobs.c.kind, jobs.c.state)
        .order_by(jobs.c.kind, jobs.c.state)
    )
    return list((await conn.execute(stmt)).all())


async def failing_hosts(conn: Conn, *, since: dt.datetime, limit: int = 50) -> list[sa.Row]:
    """Hosts whose deliveries failed since ``since``, or are waiting to be
    tried again: how many, the most attempts, the latest error and next try."""
    failing = sa.or_(jobs.c.state.in_(("failed", "gone")), sa.and_(jobs.c.state == "queued", jobs.c.attempts > 0))
    stmt = (
        sa.select(
            jobs.c.host,
            sa.func.count().label("jobs"),
            sa.func.sum(sa.case((jobs.c.state == "queued", 1), else_=0)).label("waiting"),
            sa.func.max(jobs.c.attempts).label("attempts"),
            sa.func.max(jobs.c.updated_at).label("last_at"),
            sa.func.min(sa.case((jobs.c.state == "queued", jobs.c.next_try_at), else_=None)).label("next_try_at"),
        )
        .where(jobs.c.kind == "ap.deliver", jobs.c.host.is_not(None), failing, jobs.c.updated_at >= since)
        .group_by(jobs.c.host)
        .order_by(sa.desc("jobs"))
        .limit(limit)
    )
    rows = list((await conn.execute(stmt)).all())
    out = []
    for r in rows:
        last = (await conn.execute(
            sa.select(jobs.c.last_error, jobs.c.last_status, jobs.c.id).where(
                jobs.c.kind == "ap.deliver", jobs.c.host == r.host, failing)
            .order_by(jobs.c.updated_at.desc()).limit(1))).first()
        out.append({"host": r.host, "jobs": r.jobs, "waiting": int(r.waiting or 0), "attempts": r.attempts,
                    "last_at": r.last_at, "next_try_at": r.next_try_at,
                    "last_error": last.last_error if last else None, "last_status": last.last_status if last else None,
                    "last_job_id": last.id if last else None})
    return out


async def list_failed_jobs(conn: Conn, *, limit: int = 50) -> list[sa.Row]:
    stmt = (
        sa.select(jobs.c.id, jobs.c.kind, jobs.c.state, jobs.c.host, jobs.c.attempts, jobs.c.last_status,
                  jobs.c.last_error, jobs.c.updated_at, jobs.c.next_try_at)
        .where(sa.or_(jobs.c.state.in_(("failed", "gone")), sa.and_(jobs.c.state == "queued", jobs.c.attempts > 0)))
        .order_by(jobs.c.updated_at.desc())
        .limit(limit)
    )
    return list((await conn.execute(stmt)).all())


async def list_dead_inboxes(conn: Conn, *, limit: int = 100) -> list[sa.Row]:
    stmt = sa.select(inboxes).where(inboxes.c.gone_at.is_not(None)).order_by(inboxes.c.gone_at.desc()).limit(limit)
    return list((await conn.execute(stmt)).all())


RETRYABLE = ("failed", "gone", "queued")


async def retry_job(conn: Conn, job_id: str) -> bool:
    """Put a failed (or waiting) job back in the queue, due now. A job that
    succeeded, or is running, is left alone: nothing is sent twice."""
    now = utcnow()
    stmt = (sa.update(jobs).where(jobs.c.id == job_id, jobs.c.state.in_(RETRYABLE))
            .values(state="queued", next_try_at=now, locked_until=None, updated_at=now))
    return (await conn.execute(stmt)).rowcount > 0


async def retry_host(conn: Conn, host: str) -> int:
    """Every failed or waiting delivery to ``host``, due now."""
    now = utcnow()
    failing = sa.or_(jobs.c.state.in_(("failed", "gone")), sa.and_(jobs.c.state == "queued", jobs.c.attempts > 0))
    stmt = (sa.update(jobs).where(jobs.c.kind == "ap.deliver", jobs.c.host == host, failing)
            .values(state="queued", next_try_at=now, locked_until=None, updated_at=now))
    return (await conn.execute(stmt)).rowcount


def _host(uri: str) -> str:
    from urllib.parse import urlsplit

    return (urlsplit(uri).netloc or "").lower()


async def revive_inbox(conn: Conn, uri: str) -> int:
    """Forget that an inbox answered 404/410 and send it what it missed
    (its deliveries that ended ``gone``), due now."""
    now = utcnow()
    await conn.execute(sa.delete(inboxes).where(inboxes.c.uri == uri))
    gone = (await conn.execute(sa.select(jobs.c.id, jobs.c.payload).where(
        jobs.c.kind == "ap.deliver", jobs.c.state == "gone", jobs.c.host == _host(uri),
        jobs.c.updated_at >= now - dt.timedelta(days=7)))).all()
    ids = [j.id for j in gone if (j.payload or {}).get("inbox") == uri]
    if ids:
        await conn.execute(sa.update(jobs).where(jobs.c.id.in_(ids))
                           .values(state="queued", next_try_at=now, locked_until=None, updated_at=now))
    return len(ids)

"""Durable jobs (queues as tables), their attempts, activities, inboxes and hosts.

A job is claimed by setting ``state='running'`` with a lease
(``locked_until``); a worker that dies leaves the lease to expire and the job
is claimed again. Results are written only if the job is still held under
the same attempt number, so a slow worker cannot overwrite a newer attempt.
"""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa

from hub.ids import new_id
from hub.store.base import Conn, clean_text, insert, insert_ignore, utcnow
from hub.store.schema import activities, hosts, inboxes, job_attempts, jobs

# --- jobs ----------------------------------------------------------------------------


def job_row(
    kind: str,
    payload: dict,
    *,
    dedupe_key: str | None = None,
    host: str | None = None,
    state: str = "queued",
    next_try_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> dict:
    now = now or utcnow()
    return {
        "id": new_id(),
        "kind": kind,
        "state": state,
        "payload": payload,
        "dedupe_key": dedupe_key,
        "host": host,
        "attempts": 0,
        "next_try_at": next_try_at or now,
        "locked_until": None,
        "created_at": now,
        "updated_at": now,
    }


async def put_jobs(conn: Conn, rows: list[dict]) -> list[str]:
    """Queue jobs; rows whose ``dedupe_key`` already exists are skipped. Returns new ids."""
    return await insert_ignore(conn, jobs, rows, returning=jobs.c.id)


def claim_jobs(
    conn: sa.Connection,
    *,
    now: dt.datetime,
    lease_s: float,
    limit: int,
    kinds: tuple[str, ...] | None = None,
    exclude_hosts: list[str] | None = None,
) -> list[sa.Row]:
    """Take up to ``limit`` ready jobs (queued and due, or running with a lapsed lease).

    Synchronous, like ``extend_leases`` and ``finish_jobs``: the runner calls
    them through ``Database.run_write`` so each is one transaction.
    """
    ready = sa.or_(
        sa.and_(jobs.c.state == "queued", jobs.c.next_try_at <= now),
        sa.and_(jobs.c.state == "running", jobs.c.locked_until < now),
    )
    sub = sa.select(jobs.c.id).where(ready)
    if kinds:
        sub = sub.where(jobs.c.kind.in_(kinds))
    if exclude_hosts:
        sub = sub.where(sa.or_(jobs.c.host.is_(None), jobs.c.host.not_in(exclude_hosts)))
    sub = sub.order_by(jobs.c.next_try_at).limit(limit)
    if conn.dialect.name == "postgresql":
        sub = sub.with_for_update(skip_locked=True)
    stmt = (
        sa.update(jobs)
        .where(jobs.c.id.in_(sub.scalar_subquery()))
        .values(
            state="running",
            locked_until=now + dt.timedelta(seconds=lease_s),
            attempts=jobs.c.attempts + 1,
            updated_at=now,
        )
        .returning(*jobs.c)
    )
    return list(conn.execute(stmt).all())


def extend_leases(conn: sa.Connection, job_ids: list[str], *, until: dt.datetime) -> None:
    if job_ids:
        conn.execute(
            sa.update(jobs).where(jobs.c.id.in_(job_ids), jobs.c.state == "running").values(locked_until=until)
        )


def _sqlite_ts(when: dt.datetime) -> str:
    """A timestamp in the text form SQLAlchemy's SQLite DateTime stores (naive UTC)."""
    return when.astimezone(dt.timezone.utc).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def finish_jobs(conn: sa.Connection, results: list[dict]) -> None:
    """Record outcomes: dicts with id, attempts, state, next_try_at, last_status, last_error.

    A result only applies while the job is still held under the attempt it
    reports on (a slow worker cannot overwrite a newer attempt).
    """
    if not results:
        return
    now = utcnow()
    # Errors quote what peers answered: never let their bytes break the write.
    updates = [
        (r["state"], r["next_try_at"], r.get("last_status"), clean_text(r.get("last_error"), 2000), r["id"], r["attempts"])
        for r in results
    ]
    attempts = [
        (new_id(), r["id"], r["attempts"], r.get("last_status"), clean_text(r.get("last_error"), 2000), r.get("duration_ms"))
        for r in results
        if r.get("record_attempt", True)
    ]
    if conn.dialect.name == "sqlite":
        # Called for every finished delivery: the driver's executemany in
        # SQLAlchemy's storage formats costs a third of the generic path.
        raw = conn.connection.driver_connection
        ts = _sqlite_ts(now)
        raw.executemany(
            "UPDATE jobs SET state = ?, next_try_at = ?, last_status = ?, last_error = ?, locked_until = NULL, "
            "updated_at = ? WHERE id = ? AND attempts = ?",
            [(st, _sqlite_ts(nt), ls, le, ts, i, a) for st, nt, ls, le, i, a in updates],
        )
        if attempts:
            raw.executemany(
                "INSERT INTO job_attempts (id, job_id, attempt, status_code, error, duration_ms, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(*row, ts) for row in attempts],
            )
        return
    stmt = (
        sa.update(jobs)
        .where(jobs.c.id == sa.bindparam("b_id"), jobs.c.attempts == sa.bindparam("b_attempts"))
        .values(
            state=sa.bindparam("b_state"),
            next_try_at=sa.bindparam("b_next_try_at"),
            last_status=sa.bindparam("b_last_status"),
            last_error=sa.bindparam("b_last_error"),
            locked_until=None,
            updated_at=now,
        )
    )
    conn.execute(
        stmt,
        [
            {"b_state": st, "b_next_try_at": nt, "b_last_status": ls, "b_last_error": le, "b_id": i, "b_attempts": a}
            for st, nt, ls, le, i, a in updates
        ],
    )
    if attempts:
        conn.execute(
            sa.insert(job_attempts),
            [
                {"id": aid, "job_id": jid, "attempt": n, "status_code": sc, "error": err, "duration_ms": ms, "created_at": now}
                for aid, jid, n, sc, err, ms in attempts
            ],
        )


async def get_job(conn: Conn, job_id: str) -> sa.Row | None:
    return (await conn.execute(sa.select(jobs).where(jobs.c.id == job_id))).first()


async def get_job_by_dedupe_key(conn: Conn, key: str) -> sa.Row | None:
    return (await conn.execute(sa.select(jobs).where(jobs.c.dedupe_key == key))).first()


async def list_job_attempts(conn: Conn, job_id: str) -> list[sa.Row]:
    stmt = sa.select(job_attempts).where(job_attempts.c.job_id == job_id).order_by(job_attempts.c.attempt)
    return list((await conn.execute(stmt)).all())


async def count_jobs(conn: Conn, *, states: tuple[str, ...] = ("queued", "running"), kind: str | None = None) -> int:
    stmt = sa.select(sa.func.count()).select_from(jobs).where(jobs.c.state.in_(states))
    if kind:
        stmt = stmt.where(jobs.c.kind == kind)
    return int((await conn.execute(stmt)).scalar_one())


async def next_job_due(conn: Conn) -> dt.datetime | None:
    stmt = sa.select(sa.func.min(jobs.c.next_try_at)).where(jobs.c.state == "queued")
    value = (await conn.execute(stmt)).scalar_one()
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value


async def list_deliveries(conn: Conn, activity_id: str) -> list[sa.Row]:
    """The ``ap.deliver`` jobs of one activity: its per-inbox delivery state."""
    stmt = (
        sa.select(jobs)
        .where(jobs.c.kind == "ap.deliver", jobs.c.dedupe_key.like(f"ap.deliver:{activity_id}:%"))
        .order_by(jobs.c.id)
    )
    return list((await conn.execute(stmt)).all())


# --- activities -------------------------------------------------------------------------


async def put_activity(conn: Conn, values: dict) -> bool:
    """Store an activity once; False if its URI is already stored (a replay)."""
    stmt = insert(conn, activities).values(created_at=utcnow(), **values).on_conflict_do_nothing()
    return (await conn.execute(stmt)).rowcount == 1


def put_inbound_batch(conn: sa.Connection, items: list[tuple[dict, dict]], *, now: dt.datetime) -> set[str]:
    """Store inbound activities once each, with an ``ap.inbound`` job per new one.

    ``items`` are ``(activity_row, job_payload)`` pairs. Synchronous: run it
    through ``Database.run_write`` (one transaction). Returns the ids of the
    activities actually stored; replays are skipped.
    """
    if conn.dialect.name == "postgresql":
        stmt = insert(conn, activities).on_conflict_do_nothing().returning(activities.c.id)
        stored = {r[0] for r in conn.execute(stmt, [dict(a, created_at=now) for a, _ in items])}
        rows = [job_row("ap.inbound", dict(p, activity_id=a["id"]), now=now) for a, p in items if a["id"] in stored]
        if rows:
            conn.execute(sa.insert(jobs), rows)
        return stored
    # SQLite, the hot path of every inbox: plain executemany on the driver
    # connection (a third of the cost of going through SQLAlchemy's
    # parameter processing), in SQLAlchemy's own storage formats. Under the
    # write lock (BEGIN IMMEDIATE) nothing can slip in between the read of
    # known URIs and the insert.
    raw = conn.connection.driver_connection
    uris = list({a["uri"] for a, _ in items})
    known: set[str] = set()
    for i in range(0, len(uris), 500):
        chunk = uris[i : i + 500]
        marks = ",".join("?" * len(chunk))
        known.update(r[0] for r in raw.execute(f"SELECT uri FROM activities WHERE uri IN ({marks})", chunk))
    ts = _sqlite_ts(now)
    new: dict[str, tuple] = {}
    job_rows = []
    for a, p in items:
        if a["uri"] in known or a["uri"] in new:
            continue
        new[a["uri"]] = (a["id"], a["uri"], a["type"], a["actor_uri"], a["object_uri"], 0, a["raw"], ts)
        payload = json.dumps(dict(p, activity_id=a["id"]))
        job_rows.append((new_id(), "ap.inbound", "queued", payload, 0, ts, ts, ts))
    if new:
        raw.executemany(
            "INSERT INTO activities (id, uri, type, actor_uri, object_uri, local, raw, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            list(new.values()),
        )
        raw.executemany(
            "INSERT INTO jobs (id, kind, state, payload, attempts, next_try_at, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            job_rows,
        )
    return {row[0] for row in new.values()}


async def get_activity_by_id(conn: Conn, activity_id: str) -> sa.Row | None:
    return (await conn.execute(sa.select(activities).where(activities.c.id == activity_id))).first()


async def get_activity_by_uri(conn: Conn, uri: str) -> sa.Row | None:
    return (await conn.execute(sa.select(activities).where(activities.c.uri == uri))).first()


async def get_local_activity_for(conn: Conn, *, type: str, actor_uri: str, object_uri: str) -> sa.Row | None:
    stmt = (
        sa.select(activities)
        .where(
            activities.c.type == type,
            activities.c.actor_uri == actor_uri,
            activities.c.object_uri == object_uri,
            activities.c.local.is_(True),
        )
        .order_by(activities.c.id.desc())
    )
    return (await conn.execute(stmt)).first()


async def get_activity_for(conn: Conn, *, type: str, object_uri: str) -> sa.Row | None:
    """The latest stored activity of a type about an object, ours or received."""
    stmt = (
        sa.select(activities)
        .where(activities.c.type == type, activities.c.object_uri == object_uri)
        .order_by(activities.c.id.desc())
    )
    return (await conn.execute(stmt)).first()


async def list_activity_ids_for_object(conn: Conn, object_uri: str) -> list[str]:
    stmt = (
        sa.select(activities.c.id)
        .where(activities.c.object_uri == object_uri, activities.c.local.is_(True))
        .order_by(activities.c.id)
    )
    return [r[0] for r in await conn.execute(stmt)]


async def count_activities(conn: Conn) -> int:
    return int((await conn.execute(sa.select(sa.func.count()).select_from(activities))).scalar_one())


# --- inboxes and hosts ------------------------------------------------------------------


async def mark_inbox_gone(conn: Conn, uri: str, status: int) -> None:
    now = utcnow()
    stmt = insert(conn, inboxes).values(uri=uri, gone_at=now, last_status=status, updated_at=now)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[inboxes.c.uri], set_={"gone_at": now, "last_status": status, "updated_at": now}
        )
    )


async def clear_inbox_gone(conn: Conn, uris: list[str]) -> None:
    if uris:
        await conn.execute(sa.delete(inboxes).where(inboxes.c.uri.in_(uris)))


GONE_FOR = dt.timedelta(days=7)


async def list_gone_inboxes(conn: Conn, uris: list[str]) -> set[str]:
    """Inboxes among ``uris`` that answered 404/410 in the last seven days
    (after that they are tried again, like Mastodon's unavailable domains)."""
    if not uris:
        return set()
    stmt = sa.select(inboxes.c.uri).where(
        inboxes.c.uri.in_(uris), inboxes.c.gone_at.is_not(None), inboxes.c.gone_at > utcnow() - GONE_FOR
    )
    return {r[0] for r in await conn.execute(stmt)}


async def get_host(conn: Conn, host: str) -> sa.Row | None:
    return (await conn.execute(sa.select(hosts).where(hosts.c.host == host))).first()


async def put_host(conn: Conn, host: str, **values) -> None:
    now = utcnow()
    stmt = insert(conn, hosts).values(host=host, updated_at=now, **values)
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=[hosts.c.host], set_={**values, "updated_at": now})
    )


def _bridge_send_prefix(message_id: str, identity_id: str | None = None) -> tuple[str, str]:
    prefix = f"bridge.send:{message_id}:" + (f"{identity_id}:" if identity_id else "")
    return prefix, prefix + "\uffff"


async def bridge_sends_for(conn: Conn, message_id: str) -> list[sa.Row]:
    """The ``bridge.send`` jobs of one message (their dedupe keys start with its id)."""
    low, high = _bridge_send_prefix(message_id)
    stmt = (
        sa.select(jobs)
        .where(jobs.c.dedupe_key >= low, jobs.c.dedupe_key < high, jobs.c.kind == "bridge.send")
        .order_by(jobs.c.created_at)
    )
    return list((await conn.execute(stmt)).all())


async def fail_bridge_send(conn: Conn, message_id: str, identity_id: str, reason: str) -> None:
    """A send that was accepted and later bounced: it failed after all."""
    low, high = _bridge_send_prefix(message_id, identity_id)
    await conn.execute(
        sa.update(jobs)
        .where(jobs.c.dedupe_key >= low, jobs.c.dedupe_key < high, jobs.c.kind == "bridge.send")
        .values(state="failed", last_error=reason, updated_at=utcnow())
    )

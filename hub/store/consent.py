"""Storage of consent-based data sharing: a customer's profile items, grants
(as each side keeps them), consent receipts and the access log."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from hub.ids import new_id
from hub.store.base import Conn, insert, insert_ignore, utcnow
from hub.store.schema import actors, consent_grants, consent_reads, consent_receipts, profile_items

# --- profile items -------------------------------------------------------------------------------


async def set_item(conn: Conn, actor_id: str, name: str, value: str | None) -> None:
    if value is None:
        await conn.execute(sa.delete(profile_items).where(profile_items.c.actor_id == actor_id,
                                                          profile_items.c.name == name))
        return
    now = utcnow()
    stmt = insert(conn, profile_items).values(actor_id=actor_id, name=name, value=value, updated_at=now)
    await conn.execute(stmt.on_conflict_do_update(index_elements=["actor_id", "name"],
                                                  set_={"value": value, "updated_at": now}))


async def items_of(conn: Conn, actor_id: str) -> dict[str, str]:
    rows = await conn.execute(sa.select(profile_items.c.name, profile_items.c.value)
                              .where(profile_items.c.actor_id == actor_id).order_by(profile_items.c.name))
    return dict(rows.all())


# --- grants --------------------------------------------------------------------------------------


async def put_grant(conn: Conn, values: dict) -> str:
    grant_id = values.pop("id", None) or new_id()
    await conn.execute(sa.insert(consent_grants).values(id=grant_id, created_at=utcnow(), **values))
    return grant_id


def _with_parties():
    customer, org = actors.alias("customer"), actors.alias("org")
    return (sa.select(consent_grants, customer.c.uri.label("customer_uri"), org.c.uri.label("organization_uri"),
                      customer.c.username.label("customer_username"), customer.c.domain.label("customer_domain"),
                      customer.c.local.label("customer_local"), org.c.username.label("organization_username"),
                      org.c.domain.label("organization_domain"), org.c.local.label("organization_local"),
                      org.c.name.label("organization_name"))
            .join(customer, customer.c.id == consent_grants.c.customer_id)
            .join(org, org.c.id == consent_grants.c.organization_id))


async def get_grant(conn: Conn, grant_id: str) -> sa.Row | None:
    return (await conn.execute(_with_parties().where(consent_grants.c.id == grant_id))).first()


async def get_grant_by_uri(conn: Conn, uri: str, side: str) -> sa.Row | None:
    return (await conn.execute(_with_parties().where(consent_grants.c.uri == uri,
                                                     consent_grants.c.side == side))).first()


async def get_grant_by_offer(conn: Conn, offer_uri: str, side: str) -> sa.Row | None:
    return (await conn.execute(_with_parties().where(consent_grants.c.offer_uri == offer_uri,
                                                     consent_grants.c.side == side))).first()


async def list_grants(conn: Conn, *, side: str, customer_id: str | None = None, organization_id: str | None = None,
                      states: tuple[str, ...] | None = None) -> list[sa.Row]:
    stmt = _with_parties().where(consent_grants.c.side == side)
    if customer_id:
        stmt = stmt.where(consent_grants.c.customer_id == customer_id)
    if organization_id:
        stmt = stmt.where(consent_grants.c.organization_id == organization_id)
    if states:
        stmt = stmt.where(consent_grants.c.state.in_(states))
    return list((await conn.execute(stmt.order_by(consent_grants.c.id.desc()))).all())


async def set_state(conn: Conn, grant_id: str, state: str, *, from_states: tuple[str, ...],
                    decided_by_id: str | None = None) -> bool:
    """Move a grant on, only from the states given (so that two answers cannot both win)."""
    now = utcnow()
    values: dict = {"state": state}
    if state in ("accepted", "rejected"):
        values.update(decided_at=now, decided_by_id=decided_by_id)
    if state in ("revoked", "expired", "rejected"):
        values["ended_at"] = now
    result = await conn.execute(sa.update(consent_grants).where(
        consent_grants.c.id == grant_id, consent_grants.c.state.in_(from_states)).values(**values))
    return result.rowcount == 1


async def due_to_expire(conn: Conn, now: dt.datetime, *, limit: int = 200) -> list[sa.Row]:
    stmt = _with_parties().where(consent_grants.c.side == "customer",
                                 consent_grants.c.state.in_(("offered", "accepted")),
                                 consent_grants.c.expires_at.is_not(None), consent_grants.c.expires_at <= now)
    return list((await conn.execute(stmt.limit(limit))).all())


# --- receipts and reads --------------------------------------------------------------------------


async def put_receipt(conn: Conn, grant_id: str, event: str, document: dict) -> bool:
    done = await insert_ignore(conn, consent_receipts, [{
        "id": new_id(), "grant_id": grant_id, "receipt_id": document["consentReceiptID"], "event": event,
        "document": document, "created_at": utcnow()}], returning=consent_receipts.c.id)
    return bool(done)


async def receipts_of(conn: Conn, grant_ids: list[str]) -> list[sa.Row]:
    if not grant_ids:
        return []
    return list((await conn.execute(sa.select(consent_receipts).where(consent_receipts.c.grant_id.in_(grant_ids))
                                    .order_by(consent_receipts.c.id))).all())


async def get_receipt(conn: Conn, receipt_row_id: str) -> sa.Row | None:
    return (await conn.execute(sa.select(consent_receipts).where(consent_receipts.c.id == receipt_row_id))).first()


async def put_read(conn: Conn, *, grant_id: str, customer_id: str, reader_uri: str, purpose: str,
                   items: list[str]) -> None:
    await conn.execute(sa.insert(consent_reads).values(id=new_id(), grant_id=grant_id, customer_id=customer_id,
                                                       reader_uri=reader_uri, purpose=purpose, items=items,
                                                       created_at=utcnow()))


async def reads_of(conn: Conn, customer_id: str, *, limit: int = 500) -> list[sa.Row]:
    org = actors.alias("org")
    stmt = (sa.select(consent_reads, org.c.username.label("reader_username"), org.c.domain.label("reader_domain"),
                      org.c.name.label("reader_name"), org.c.local.label("reader_local"))
            .outerjoin(org, org.c.uri == consent_reads.c.reader_uri)
            .where(consent_reads.c.customer_id == customer_id).order_by(consent_reads.c.id.desc()).limit(limit))
    return list((await conn.execute(stmt)).all())

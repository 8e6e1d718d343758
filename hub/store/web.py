"""Browser sessions, failed sign-ins and invitations: the SQL."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from hub.ids import new_id
from hub.store.base import Conn, utcnow
from hub.store.schema import accounts, invitations, login_failures, web_sessions


async def put_session(conn: Conn, *, token_hash: str, account_id: str, csrf_token: str, user_agent: str | None,
                      expires_at: dt.datetime, pending: bool = False) -> None:
    now = utcnow()
    await conn.execute(sa.insert(web_sessions).values(
        token_hash=token_hash, account_id=account_id, csrf_token=csrf_token, user_agent=(user_agent or "")[:255] or None,
        created_at=now, last_seen_at=now, expires_at=expires_at, pending=pending,
    ))


async def confirm_session(conn: Conn, token_hash: str, *, expires_at: dt.datetime) -> None:
    await conn.execute(sa.update(web_sessions).where(web_sessions.c.token_hash == token_hash)
                       .values(pending=False, expires_at=expires_at, last_seen_at=utcnow()))


async def set_totp_secret(conn: Conn, account_id: str, secret: str | None) -> None:
    await conn.execute(sa.update(accounts).where(accounts.c.id == account_id).values(totp_secret=secret))


async def get_session(conn: Conn, token_hash: str, now: dt.datetime) -> sa.Row | None:
    stmt = (
        sa.select(web_sessions, accounts.c.username, accounts.c.email, accounts.c.totp_secret, accounts.c.is_admin)
        .join(accounts, accounts.c.id == web_sessions.c.account_id)
        .where(web_sessions.c.token_hash == token_hash, web_sessions.c.expires_at > now)
    )
    return (await conn.execute(stmt)).first()


async def touch_session(conn: Conn, token_hash: str, *, expires_at: dt.datetime) -> None:
    await conn.execute(sa.update(web_sessions).where(web_sessions.c.token_hash == token_hash)
                       .values(last_seen_at=utcnow(), expires_at=expires_at))


async def delete_session(conn: Conn, token_hash: str) -> None:
    await conn.execute(sa.delete(web_sessions).where(web_sessions.c.token_hash == token_hash))


async def delete_sessions_of(conn: Conn, account_id: str, *, keep: str | None = None) -> int:
    stmt = sa.delete(web_sessions).where(web_sessions.c.account_id == account_id)
    if keep:
        stmt = stmt.where(web_sessions.c.token_hash != keep)
    return (await conn.execute(stmt)).rowcount


async def add_failure(conn: Conn, key: str) -> None:
    await conn.execute(sa.insert(login_failures).values(id=new_id(), key=key[:320], created_at=utcnow()))


async def count_failures(conn: Conn, key: str, since: dt.datetime) -> int:
    stmt = sa.select(sa.func.count()).select_from(login_failures).where(
        login_failures.c.key == key[:320], login_failures.c.created_at > since
    )
    return int((await conn.execute(stmt)).scalar_one())


async def clear_failures(conn: Conn, key: str) -> None:
    await conn.execute(sa.delete(login_failures).where(login_failures.c.key == key[:320]))


async def prune_failures(conn: Conn, before: dt.datetime) -> None:
    await conn.execute(sa.delete(login_failures).where(login_failures.c.created_at < before))


async def put_invitation(conn: Conn, *, code_hash: str, created_by_id: str | None, expires_at: dt.datetime | None) -> str:
    invitation_id = new_id()
    await conn.execute(sa.insert(invitations).values(id=invitation_id, code_hash=code_hash, created_by_id=created_by_id,
                                                     expires_at=expires_at, created_at=utcnow()))
    return invitation_id


async def use_invitation(conn: Conn, code_hash: str, account_id: str, now: dt.datetime) -> bool:
    """Mark an unused, unexpired invitation used; False if there is none."""
    stmt = sa.update(invitations).where(
        invitations.c.code_hash == code_hash, invitations.c.used_at.is_(None),
        sa.or_(invitations.c.expires_at.is_(None), invitations.c.expires_at > now),
    ).values(used_at=now, used_by_id=account_id)
    return (await conn.execute(stmt)).rowcount == 1


async def invitation_valid(conn: Conn, code_hash: str, now: dt.datetime) -> bool:
    stmt = sa.select(invitations.c.id).where(
        invitations.c.code_hash == code_hash, invitations.c.used_at.is_(None),
        sa.or_(invitations.c.expires_at.is_(None), invitations.c.expires_at > now),
    )
    return (await conn.execute(stmt)).first() is not None


async def set_password_hash(conn: Conn, account_id: str, password_hash: str) -> None:
    await conn.execute(sa.update(accounts).where(accounts.c.id == account_id).values(password_hash=password_hash))


async def set_email(conn: Conn, account_id: str, email: str | None) -> None:
    await conn.execute(sa.update(accounts).where(accounts.c.id == account_id).values(email=email))


async def put_reset(conn: Conn, *, token_hash: str, account_id: str, expires_at: dt.datetime) -> None:
    from hub.store.schema import password_resets

    await conn.execute(sa.insert(password_resets).values(token_hash=token_hash, account_id=account_id,
                                                         expires_at=expires_at, created_at=utcnow()))


async def put_email_change(conn: Conn, *, token_hash: str, account_id: str, email: str,
                           expires_at: dt.datetime) -> None:
    from hub.store.schema import email_changes

    await conn.execute(sa.insert(email_changes).values(token_hash=token_hash, account_id=account_id, email=email,
                                                       expires_at=expires_at, created_at=utcnow()))


async def get_email_change(conn: Conn, token_hash: str, now: dt.datetime) -> sa.Row | None:
    from hub.store.schema import email_changes

    stmt = sa.select(email_changes).where(email_changes.c.token_hash == token_hash,
                                          email_changes.c.used_at.is_(None), email_changes.c.expires_at > now)
    return (await conn.execute(stmt)).first()


async def use_email_change(conn: Conn, token_hash: str, account_id: str, now: dt.datetime) -> bool:
    """Spend the link; every other pending change of the login ends with it."""
    from hub.store.schema import email_changes

    stmt = sa.update(email_changes).where(email_changes.c.token_hash == token_hash,
                                          email_changes.c.used_at.is_(None)).values(used_at=now)
    if (await conn.execute(stmt)).rowcount != 1:
        return False
    await cancel_email_changes(conn, account_id, now)
    return True


async def cancel_email_changes(conn: Conn, account_id: str, now: dt.datetime) -> None:
    """Every pending change of the login's address ends (a new one asked, the password changed or reset)."""
    from hub.store.schema import email_changes

    await conn.execute(sa.update(email_changes).where(email_changes.c.account_id == account_id,
                                                      email_changes.c.used_at.is_(None)).values(used_at=now))


async def get_reset(conn: Conn, token_hash: str, now: dt.datetime) -> sa.Row | None:
    from hub.store.schema import password_resets

    stmt = sa.select(password_resets).where(password_resets.c.token_hash == token_hash,
                                            password_resets.c.used_at.is_(None), password_resets.c.expires_at > now)
    return (await conn.execute(stmt)).first()


async def use_reset(conn: Conn, token_hash: str, now: dt.datetime) -> bool:
    from hub.store.schema import password_resets

    stmt = sa.update(password_resets).where(password_resets.c.token_hash == token_hash,
                                            password_resets.c.used_at.is_(None)).values(used_at=now)
    return (await conn.execute(stmt)).rowcount == 1

"""Signing in from a browser: accounts, sessions, invitations.

A session is a random token in a cookie (``HttpOnly``, ``SameSite=Lax``,
``Secure`` and the ``__Host-`` prefix outside plain-http development); the
database keeps only its SHA-256 and a CSRF token that every form of the
session carries. Passwords are argon2 hashes (argon2-cffi). Failed sign-ins
are counted per account and per client address in the database, so the
limit holds across processes; a login that does not exist costs the same
time as one that does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import secrets
from typing import TYPE_CHECKING

import sqlalchemy as sa
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hub.errors import Conflict, Forbidden, Gone, HubError, Unauthorized, UsageError
from hub.passwords import HASHER
from hub.store import actors as actor_store
from hub.store import web as web_store
from hub.store.base import utcnow

if TYPE_CHECKING:
    from hub.context import Hub

_HASHER = HASHER
_DUMMY = _HASHER.hash("not a password of anyone's")
TOUCH_EVERY = dt.timedelta(hours=1)


class TooManyAttempts(HubError):
    status = 429

    def __init__(self, safe: str, retry_after_s: int):
        super().__init__(safe)
        self.retry_after_s = retry_after_s


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def cookie_name(hub: Hub) -> str:
    return "rt_session" if hub.cfg.scheme == "http" else "__Host-rt_session"


async def _verify(password_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _HASHER.verify(password_hash or _DUMMY, password) and password_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


async def _account_for_login(hub: Hub, login: str) -> sa.Row | None:
    login = login.strip()
    async with hub.db.read() as conn:
        if "@" in login:
            account = await actor_store.get_account_by_email(conn, login.lower())
            if account is not None:
                return account
        return await actor_store.get_account_by_username(conn, login.lower().lstrip("@"))


async def _check_rate(hub: Hub, keys: list[str]) -> None:
    since = utcnow() - dt.timedelta(seconds=hub.cfg.login_window_s)
    async with hub.db.read() as conn:
        for key in keys:
            limit = hub.cfg.login_max_failures * (4 if key.startswith("ip:") else 1)
            if await web_store.count_failures(conn, key, since) >= limit:
                raise TooManyAttempts("too many failed sign-ins: wait a few minutes and try again",
                                      hub.cfg.login_window_s)


async def check_login(hub: Hub, login: str, password: str, *, ip: str | None) -> sa.Row:
    """The account a login (username or email) and password name, rate-limited
    like the sign-in form; Unauthorized on a wrong login or password."""
    if not login.strip() or not password:
        raise UsageError("enter your username (or email) and your password")
    keys = [f"user:{login.strip().lower().lstrip('@')}"] + ([f"ip:{ip}"] if ip else [])
    await _check_rate(hub, keys)
    account = await _account_for_login(hub, login)
    ok = await _verify(account.password_hash if account is not None else None, password)
    if not ok or account is None:
        async with hub.db.write() as conn:
            for key in keys:
                await web_store.add_failure(conn, key)
            await web_store.prune_failures(conn, utcnow() - dt.timedelta(days=1))
        raise Unauthorized("wrong username or password")
    if _HASHER.check_needs_rehash(account.password_hash):
        new_hash = await asyncio.to_thread(_HASHER.hash, password)
        async with hub.db.write() as conn:
            await web_store.set_password_hash(conn, account.id, new_hash)
    async with hub.db.write() as conn:
        await web_store.clear_failures(conn, keys[0])
    return account


async def sign_in(hub: Hub, login: str, password: str, *, ip: str | None, user_agent: str | None) -> tuple[sa.Row, str]:
    """``(account, session token)``; Unauthorized on a wrong login or password."""
    account = await check_login(hub, login, password, ip=ip)
    # with two-factor sign-in, the session waits for the code (``confirm_code``)
    token = await start_session(hub, account.id, user_agent=user_agent, pending=bool(account.totp_secret))
    return account, token


PENDING_TTL = dt.timedelta(minutes=10)


async def start_session(hub: Hub, account_id: str, *, user_agent: str | None, pending: bool = False) -> str:
    token = secrets.token_urlsafe(32)
    expires = utcnow() + (PENDING_TTL if pending else dt.timedelta(days=hub.cfg.session_days))
    async with hub.db.write() as conn:
        await web_store.put_session(conn, token_hash=digest(token), account_id=account_id,
                                    csrf_token=secrets.token_urlsafe(24), user_agent=user_agent,
                                    expires_at=expires, pending=pending)
    return token


async def pending_session_of(hub: Hub, token: str | None) -> sa.Row | None:
    """A session whose password was right and whose second factor is due."""
    if not token or len(token) > 200:
        return None
    async with hub.db.read() as conn:
        session = await web_store.get_session(conn, digest(token), utcnow())
    return session if session is not None and session.pending else None


async def confirm_code(hub: Hub, token: str, code: str) -> None:
    """The second factor: a TOTP code of the account's authenticator app."""
    import pyotp

    session = await pending_session_of(hub, token)
    if session is None:
        raise Unauthorized("sign in again: that step has expired")
    key = f"2fa:{session.account_id}"
    await _check_rate(hub, [key])
    if not pyotp.TOTP(session.totp_secret).verify(code.replace(" ", "").strip(), valid_window=1):
        async with hub.db.write() as conn:
            await web_store.add_failure(conn, key)
        raise Unauthorized("that code is not right (codes change every 30 seconds)")
    async with hub.db.write() as conn:
        await web_store.confirm_session(conn, session.token_hash,
                                        expires_at=utcnow() + dt.timedelta(days=hub.cfg.session_days))
        await web_store.clear_failures(conn, key)


def new_totp_secret() -> str:
    import pyotp

    return pyotp.random_base32()


def totp_uri(hub: Hub, username: str, secret: str) -> str:
    import pyotp

    return pyotp.TOTP(secret).provisioning_uri(name=f"{username}@{hub.cfg.domain}", issuer_name=hub.cfg.instance_name)


async def enable_totp(hub: Hub, account_id: str, secret: str, code: str) -> None:
    import pyotp

    if len(secret) < 16 or not secret.isalnum():
        raise UsageError("start again: the secret is not valid")
    if not pyotp.TOTP(secret).verify(code.replace(" ", "").strip(), valid_window=1):
        raise UsageError("that code is not right: check the time of your phone and try the next one")
    async with hub.db.write() as conn:
        await web_store.set_totp_secret(conn, account_id, secret)


async def disable_totp(hub: Hub, account_id: str, password: str) -> None:
    async with hub.db.read() as conn:
        account = await actor_store.get_account_by_id(conn, account_id)
    if account is None or not await _verify(account.password_hash, password):
        raise Unauthorized("the password is not right")
    async with hub.db.write() as conn:
        await web_store.set_totp_secret(conn, account_id, None)


async def session_of(hub: Hub, token: str | None) -> sa.Row | None:
    """The live session of a cookie's token (its expiry slides, at most hourly);
    None while it waits for its second factor."""
    if not token or len(token) > 200:
        return None
    now = utcnow()
    async with hub.db.read() as conn:
        session = await web_store.get_session(conn, digest(token), now)
    if session is not None and session.pending:
        return None
    if session is not None and now - session.last_seen_at > TOUCH_EVERY:
        async with hub.db.write() as conn:
            await web_store.touch_session(conn, session.token_hash,
                                          expires_at=now + dt.timedelta(days=hub.cfg.session_days))
    return session


async def sign_out(hub: Hub, token: str | None) -> None:
    if token:
        async with hub.db.write() as conn:
            await web_store.delete_session(conn, digest(token))


async def sign_up(hub: Hub, *, username: str, password: str, email: str | None, name: str | None,
                  invitation: str | None, user_agent: str | None, session: bool = True) -> tuple[sa.Row, str | None]:
    """A new customer (a ``Person``) and their login, signed in (unless ``session`` is false)."""
    from hub import actors

    now = utcnow()
    if not hub.cfg.signups:
        if not invitation:
            raise Forbidden("sign-up on this server is by invitation")
        async with hub.db.read() as conn:
            if not await web_store.invitation_valid(conn, digest(invitation.strip()), now):
                raise Forbidden("this invitation is not valid (used, expired or mistyped)")
    if len(password) > 1024:
        raise UsageError("that password is too long")
    actor = await actors.create_local_actor(hub, username, kind="person", name=name or None,
                                            email=(email or "").strip().lower() or None, password=password)
    async with hub.db.write() as conn:
        account = await actor_store.get_account_by_username(conn, actor.username)
        if not hub.cfg.signups and not await web_store.use_invitation(conn, digest(invitation.strip()), account.id, now):
            raise Forbidden("this invitation was used meanwhile")
    token = await start_session(hub, account.id, user_agent=user_agent) if session else None
    return account, token


async def change_password(hub: Hub, account_id: str, current: str, new: str, *, keep_token: str | None) -> int:
    """Change a password (the current one proves it is you); other sessions end. Their count."""
    from hub.actors import hash_password

    async with hub.db.read() as conn:
        account = await actor_store.get_account_by_id(conn, account_id)
    if account is None or not await _verify(account.password_hash, current):
        raise Unauthorized("the current password is not right")
    if len(new) < 8:
        raise UsageError("the new password needs at least 8 characters")
    if len(new) > 1024:
        raise UsageError("that password is too long")
    new_hash = await asyncio.to_thread(hash_password, new)
    async with hub.db.write() as conn:
        await web_store.set_password_hash(conn, account_id, new_hash)
        await web_store.cancel_email_changes(conn, account_id, utcnow())  # whoever asked one knew the old password
        from hub.store import mastodon as client_store  # apps signed in with the old password sign in again

        await client_store.revoke_tokens_of_account(conn, account_id)
        return await web_store.delete_sessions_of(conn, account_id, keep=digest(keep_token) if keep_token else None)


EMAIL_CHANGE_TTL = dt.timedelta(hours=24)


async def check_password(hub: Hub, account_id: str, password: str) -> sa.Row:
    """The login, when ``password`` is its own (asked again before a change of address, or what cannot be
    undone); Unauthorized otherwise."""
    async with hub.db.read() as conn:
        account = await actor_store.get_account_by_id(conn, account_id)
    if account is None or not await _verify(account.password_hash, password):
        raise Unauthorized("the password is not right")
    return account


async def change_email(hub: Hub, account_id: str, password: str, email: str) -> dict:
    """Change (or, empty, remove) the login's email address, where password resets and notifications go;
    the password proves it is you. A new address changes only once its owner opens the link mailed to
    it (so a typo or someone else's address never receives your resets), and the old address is told.
    Returns ``{"state": "removed" | "pending" | "changed", "email": ...}``; ``changed`` at once only on
    a hub that sends no mail (no ``smtp_relay``), where nothing could be mailed to the address anyway."""
    from hub.actors import _EMAIL
    from hub.mail import send_system_mail

    email = email.strip()
    if email and (len(email) > 320 or not _EMAIL.match(email)):
        raise UsageError(f"invalid email address {email!r}")
    account = await check_password(hub, account_id, password)
    async with hub.db.write() as conn:
        other = await actor_store.get_account_by_email(conn, email) if email else None
        if other is not None and other.id != account_id:
            raise Conflict("that email address belongs to another login")
        await web_store.cancel_email_changes(conn, account_id, utcnow())  # only the newest request counts
        if not email or not hub.cfg.smtp_relay or (account.email or "").lower() == email.lower():
            await web_store.set_email(conn, account_id, email or None)
            return {"state": "changed" if email else "removed", "email": email or None}
        token = secrets.token_urlsafe(32)
        await web_store.put_email_change(conn, token_hash=digest(token), account_id=account_id, email=email,
                                         expires_at=utcnow() + EMAIL_CHANGE_TTL)
    link = f"{hub.cfg.base_url}/settings/email/{token}"
    await send_system_mail(
        hub, to=email, subject=f"Confirm your email address on {hub.cfg.domain}",
        text=(f"Someone signed in as {account.username} on {hub.cfg.domain} asked to use this address for "
              f"password resets and notifications.\n\nIf that was you, confirm it within a day:\n{link}\n\n"
              f"If it was not you, ignore this mail: nothing changes."))
    if account.email:
        try:
            await send_system_mail(
                hub, to=account.email, subject=f"Your email address on {hub.cfg.domain} is being changed",
                text=(f"Someone signed in as {account.username} on {hub.cfg.domain} asked to move this login's "
                      f"mail from this address to {email}. It changes once that address confirms.\n\n"
                      f"If that was not you, sign in and change your password now: whoever did it knows it."))
        except HubError:
            pass  # the old address may be gone: the change still waits for the new one
    return {"state": "pending", "email": email}


async def email_change_of(hub: Hub, token: str) -> sa.Row | None:
    async with hub.db.read() as conn:
        return await web_store.get_email_change(conn, digest(token), utcnow())


async def confirm_email(hub: Hub, token: str) -> str:
    """The link was opened: the address changes (once; other pending changes of the login end)."""
    now = utcnow()
    async with hub.db.write() as conn:
        change = await web_store.get_email_change(conn, digest(token), now)
        if change is None or not await web_store.use_email_change(conn, digest(token), change.account_id, now):
            raise Gone("this link has expired or was used already: change the address again from your settings")
        other = await actor_store.get_account_by_email(conn, change.email)
        if other is not None and other.id != change.account_id:
            raise Conflict("that email address belongs to another login now")
        await web_store.set_email(conn, change.account_id, change.email)
    return change.email


async def create_invitation(hub: Hub, *, created_by_id: str | None, days: int | None = 14) -> str:
    code = secrets.token_urlsafe(12)
    async with hub.db.write() as conn:
        await web_store.put_invitation(conn, code_hash=digest(code), created_by_id=created_by_id,
                                       expires_at=utcnow() + dt.timedelta(days=days) if days else None)
    return code


RESET_TTL = dt.timedelta(hours=1)


async def request_reset(hub: Hub, email_address: str, *, ip: str | None) -> bool:
    """Mail a reset link if an account has this address; the caller never says
    which (no account enumeration). False when nothing was sent."""
    from hub.mail import send_system_mail

    email_address = email_address.strip().lower()
    if "@" not in email_address:
        raise UsageError("enter the email address of your account")
    keys = [f"reset:{email_address}"] + ([f"ip:{ip}"] if ip else [])
    await _check_rate(hub, keys)
    async with hub.db.write() as conn:
        for key in keys:  # each request counts, so that nobody floods a mailbox
            await web_store.add_failure(conn, key)
        account = await actor_store.get_account_by_email(conn, email_address)
        if account is None:
            return False
        token = secrets.token_urlsafe(32)
        await web_store.put_reset(conn, token_hash=digest(token), account_id=account.id,
                                  expires_at=utcnow() + RESET_TTL)
    link = f"{hub.cfg.base_url}/reset/{token}"
    await send_system_mail(
        hub, to=email_address, subject=f"Reset your password on {hub.cfg.domain}",
        text=(f"Someone (hopefully you) asked to reset the password of {account.username} on {hub.cfg.domain}.\n\n"
              f"Choose a new password here within the hour:\n{link}\n\n"
              f"If it was not you, ignore this mail: your password stays as it is."))
    return True


async def reset_account(hub: Hub, token: str) -> sa.Row | None:
    async with hub.db.read() as conn:
        reset = await web_store.get_reset(conn, digest(token), utcnow())
        return await actor_store.get_account_by_id(conn, reset.account_id) if reset is not None else None


async def finish_reset(hub: Hub, token: str, new: str, *, user_agent: str | None) -> tuple[sa.Row, str]:
    """Set the new password (every session and app token ends) and sign in; the link works once."""
    from hub.actors import hash_password

    if len(new) < 8:
        raise UsageError("the new password needs at least 8 characters")
    if len(new) > 1024:
        raise UsageError("that password is too long")
    new_hash = await asyncio.to_thread(hash_password, new)
    now = utcnow()
    async with hub.db.write() as conn:
        reset = await web_store.get_reset(conn, digest(token), now)
        if reset is None or not await web_store.use_reset(conn, digest(token), now):
            raise Forbidden("this link has expired or was used already: ask for a new one")
        await web_store.set_password_hash(conn, reset.account_id, new_hash)
        await web_store.delete_sessions_of(conn, reset.account_id)
        await web_store.cancel_email_changes(conn, reset.account_id, now)  # a pending address change ends too
        from hub.store import mastodon as client_store  # and every app's token: whoever had the password is out

        await client_store.revoke_tokens_of_account(conn, reset.account_id)
        account = await actor_store.get_account_by_id(conn, reset.account_id)
    return account, await start_session(hub, account.id, user_agent=user_agent)

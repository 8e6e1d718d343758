"""IMAP polling: the email bridge reads a support mailbox an organization (or
a customer) keeps at its own mail provider.

Each mailbox is one entry of the ``email`` bridge row's settings
(``settings["imap"]``)::

    {"id": "imap-3f9c2a1b", "owner": "acme", "host": "imap.example.com", "port": 993,
     "user": "support@acme.example", "password": "...", "tls": "tls|starttls|none",
     "folder": "INBOX", "uidvalidity": 1795464646, "last_uid": 41, "skipped": 0}

Every ``imap_poll_s`` seconds the poller (started by the email connector when
it runs inside the hub, ``roundtable serve``) logs in to each mailbox, selects
its folder and takes every message whose UID is above ``last_uid``. A message
is handed to the bridge exactly as the SMTP listener hands one
(``link.submit``: stored raw and queued), addressed to
``OWNER@mail_domain``, with its ``Return-Path`` as the envelope sender; only
then is ``last_uid`` moved past it. A crash between the two fetches the
message again at the next poll, and the message map drops the copy
(duplicate Message-ID). Nothing in the mailbox is changed: bodies are read
with ``BODY.PEEK[]`` (the ``\\Seen`` flag stays as it was), nothing is
deleted or moved.

When the folder's UIDVALIDITY changes (the server rebuilt it) every message
is read again from UID 1; what was placed already is dropped as a duplicate.
A message over ``max_mail_bytes`` is not fetched: it is logged, counted in
the mailbox's ``skipped`` and named in its ``last_skipped``.

Failures never stop the hub: a refused login shows the bridge as
``bad_credentials``, an unreachable server as ``disconnected``; each failing
mailbox is tried again with a growing wait (the poll interval doubled per
failure, at most :data:`MAX_BACKOFF_S`). When every mailbox reads again the
bridge's state is what the listener had set.

The password is a secret: it is never logged, never printed by the command
line, never in ``--json`` output (:func:`public`). It is stored in the
database like the bridge tokens' secrets are.

A connector run out of process (``roundtable bridge run``) does not poll: the
mailboxes and their positions live in the hub's database.
"""

from __future__ import annotations

import asyncio
import copy
import email.parser
import email.policy
import logging
import re
import secrets
import ssl
import time
from typing import TYPE_CHECKING, Any

import aioimaplib
import sqlalchemy as sa

from hub.bridges.base import State
from hub.errors import NotFound, UsageError
from hub.store import bridges as bridge_store
from hub.store.schema import bridges as bridges_table

if TYPE_CHECKING:
    from hub.bridges.core import LocalLink
    from hub.bridges.email import EmailConnector
    from hub.context import Hub
    from hub.db import Database

log = logging.getLogger(__name__)

BRIDGE = "email"
"""The bridge row whose settings hold the mailboxes (the in-process email connector's name)."""
TLS_MODES = ("tls", "starttls", "none")
COMMAND_TIMEOUT_S = 30.0
"""Each IMAP command (and the connection) must answer within this (it is an
idle timeout for a long FETCH: aioimaplib restarts it as data comes)."""
CHECK_TIMEOUT_S = 20.0
"""``roundtable bridge imap add``: the whole login check."""
MAX_BACKOFF_S = 900.0
STOP_GRACE_S = 10.0
"""``stop()`` lets a message being handed over finish for this long (IMAP
commands in flight are stopped at once: the position is saved after each
message, so nothing is lost)."""

_FETCH_LINE = re.compile(rb"^\d+ FETCH \(")
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_CODE = re.compile(r"\[([A-Z-]+)")
_SELECT_CODE = re.compile(rb"\[(UIDVALIDITY|UIDNEXT) (\d+)\]")
_EXISTS = re.compile(rb"^(\d+) EXISTS$")


class ImapError(Exception):
    """A mailbox cannot be read; ``state`` is what the bridge shows for it."""

    def __init__(self, state: State, detail: str):
        super().__init__(detail)
        self.state = state
        self.detail = detail


# --- the mailboxes in the bridge row ---------------------------------------------------------------


def public(box: dict) -> dict:
    """A mailbox as shown: everything but the password."""
    return {k: v for k, v in box.items() if k != "password"}


async def list_mailboxes(db: Database, bridge: str = BRIDGE) -> list[dict]:
    async with db.read() as conn:
        row = await bridge_store.get_bridge(conn, bridge)
    return [dict(b) for b in ((row.settings or {}).get("imap") or [])] if row is not None else []


async def change_settings(db: Database, bridge: str, fn) -> Any:
    """``fn(settings)`` changes a copy of the bridge row's settings, which is
    stored; its answer is returned. The row is locked from the read to the
    write (``FOR UPDATE`` on PostgreSQL, the write lock on SQLite), so the
    poller and the command line never undo each other's changes."""
    async with db.write() as conn:
        stmt = sa.select(bridges_table.c.settings).where(bridges_table.c.name == bridge).with_for_update()
        row = (await conn.execute(stmt)).first()
        if row is None:
            raise NotFound(f"no bridge named {bridge!r}")
        settings = copy.deepcopy(row.settings or {})
        answer = fn(settings)
        await bridge_store.update_bridge(conn, bridge, {"settings": settings})
        return answer


async def update_mailbox(db: Database, bridge: str, box_id: str, values: dict) -> bool:
    """Set fields of one mailbox; False when it is no longer configured."""

    def change(settings: dict) -> bool:
        for box in settings.get("imap") or []:
            if box.get("id") == box_id:
                box.update(values)
                return True
        return False

    return await change_settings(db, bridge, change)


async def add_mailbox(hub: Hub, owner: str, *, host: str, port: int, user: str, password: str, tls: str = "tls",
                      folder: str = "INBOX", skip_existing: bool = False, check: bool = True) -> dict:
    """``roundtable bridge imap add``: check the login once, then store the mailbox."""
    from hub.bridges.core import accepts_recipient

    owner = owner.strip().lstrip("@").lower()
    host, user, folder = host.strip(), user.strip(), folder.strip()
    if not await accepts_recipient(hub, owner):
        raise UsageError(f"no local actor @{owner} that can take mail (an organization or a customer of this hub, "
                         "not a bridged person)")
    if tls not in TLS_MODES:
        raise UsageError(f"--tls: expected {', '.join(TLS_MODES)}, got {tls!r}")
    if tls == "none" and not hub.cfg.dev:
        raise UsageError("--tls none (plain IMAP, the password in clear) is only allowed in development mode "
                         "(ROUNDTABLE_DEV=1)")
    if not host or any(c.isspace() for c in host):
        raise UsageError(f"--host: not a host name: {host!r}")
    if not 0 < port < 65536:
        raise UsageError(f"--port: not a port: {port}")
    if not user or not password:
        raise UsageError("an IMAP user and password are required")
    if any(c in s for s in (user, password, folder) for c in "\r\n\0"):
        raise UsageError("line breaks and NUL are not allowed in the user, password or folder")
    if not folder:
        raise UsageError("--folder: empty")
    box = {"id": "imap-" + secrets.token_hex(4), "owner": owner, "host": host, "port": port, "user": user,
           "password": password, "tls": tls, "folder": folder, "uidvalidity": None, "last_uid": 0, "skipped": 0}
    for other in await list_mailboxes(hub.db):
        if (other.get("host"), other.get("port"), other.get("user"), other.get("folder")) == (host, port, user, folder):
            raise UsageError(f"this mailbox is polled already, as {other['id']} (for @{other.get('owner')})")
    if check or skip_existing:
        info = await check_login(box, dev=hub.cfg.dev)
        if skip_existing:
            if info["uidnext"] is None and info["exists"]:
                raise UsageError("the server did not say the folder's next UID (UIDNEXT): cannot skip the mail in it")
            box["uidvalidity"] = info["uidvalidity"]
            box["last_uid"] = max(0, (info["uidnext"] or 1) - 1)

    def add(settings: dict) -> None:
        boxes = list(settings.get("imap") or [])
        boxes.append(box)
        settings["imap"] = boxes

    await change_settings(hub.db, BRIDGE, add)
    log.info("IMAP mailbox %s added: %s@%s:%s (%s) folder %s for @%s", box["id"], user, host, port, tls, folder, owner)
    return public(box)


async def remove_mailbox(hub: Hub, box_id: str) -> dict:
    def remove(settings: dict) -> dict | None:
        boxes = list(settings.get("imap") or [])
        found = next((b for b in boxes if b.get("id") == box_id), None)
        if found is not None:
            settings["imap"] = [b for b in boxes if b is not found]
        return found

    found = await change_settings(hub.db, BRIDGE, remove)
    if found is None:
        raise NotFound(f"no IMAP mailbox {box_id!r} (see `roundtable bridge imap list`)")
    return public(found)


async def check_login(box: dict, *, dev: bool, timeout: float = CHECK_TIMEOUT_S) -> dict:
    """Connect, log in and select the folder once; a :class:`UsageError`
    saying what failed, else the folder's ``uidvalidity``, ``uidnext`` and
    ``exists``."""
    where = f"{box['host']}:{box['port']}"
    try:
        async with asyncio.timeout(timeout):
            client, info = await open_session(box, dev=dev, timeout=min(timeout, COMMAND_TIMEOUT_S))
            await close_session(client)
            return info
    except ImapError as exc:
        raise UsageError(f"IMAP {where}, user {box['user']}: {exc.detail}") from None
    except TimeoutError:
        raise UsageError(f"IMAP {where}: no answer within {timeout:g} s") from None
    except (OSError, aioimaplib.AioImapException) as exc:
        raise UsageError(f"IMAP {where}: {_network_error(exc)}") from None


# --- one IMAP session -----------------------------------------------------------------------------


def _text(response) -> str:
    lines = [bytes(x) for x in response.lines if isinstance(x, (bytes, bytearray))]
    return (lines[-1].decode("utf-8", "replace") if lines else "").strip()[:300]


def _network_error(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the server's TLS certificate is not valid: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


async def _starttls(client: aioimaplib.IMAP4, host: str, timeout: float) -> None:
    """STARTTLS (RFC 3501 6.2.1), which aioimaplib does not do itself: the
    command, then the same connection wrapped in TLS, then the capabilities
    asked again (those sent in clear are not to be believed)."""
    protocol = client.protocol
    if "STARTTLS" not in protocol.capabilities:
        raise ImapError(State.ERROR, "the server does not offer STARTTLS (try --tls tls, and its port)")
    command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
    response = await asyncio.wait_for(protocol.execute(command), timeout)
    if response.result != "OK":
        raise ImapError(State.ERROR, f"STARTTLS refused: {_text(response)}")
    loop = asyncio.get_running_loop()
    protocol.transport = await asyncio.wait_for(
        loop.start_tls(protocol.transport, protocol, ssl.create_default_context(), server_hostname=host), timeout)
    await asyncio.wait_for(protocol.capability(), timeout)


async def open_session(box: dict, *, dev: bool, timeout: float = COMMAND_TIMEOUT_S) -> tuple[aioimaplib.IMAP4, dict]:
    """A logged-in client with the box's folder selected, and what SELECT
    said (``uidvalidity``, ``uidnext``, ``exists``). Raises
    :class:`ImapError` for what trying again will not fix, ``OSError``,
    ``TimeoutError`` or aioimaplib's errors for the network."""
    tls = box.get("tls") or "tls"
    if tls not in TLS_MODES:
        raise ImapError(State.ERROR, f"unknown TLS mode {tls!r}")
    if tls == "none" and not dev:
        raise ImapError(State.ERROR, "plain IMAP (tls none) is only allowed in development mode")
    host, port = box["host"], int(box["port"])
    if tls == "tls":
        client = aioimaplib.IMAP4_SSL(host=host, port=port, timeout=timeout, ssl_context=ssl.create_default_context())
    else:
        client = aioimaplib.IMAP4(host=host, port=port, timeout=timeout)
    try:
        await client.wait_hello_from_server()
        if tls == "starttls":
            await _starttls(client, host, timeout)
        if "LOGINDISABLED" in client.protocol.capabilities:
            raise ImapError(State.ERROR, "the server does not allow a password login on this connection "
                            "(LOGINDISABLED): use tls or starttls")
        response = await client.login(aioimaplib.quoted(box["user"]), box["password"])
        if response.result != "OK":
            code = _CODE.search(_text(response))
            if code and code.group(1) in ("UNAVAILABLE", "INUSE", "LIMIT"):
                raise ImapError(State.DISCONNECTED, f"the server cannot log us in now: {_text(response)}")
            raise ImapError(State.BAD_CREDENTIALS, f"the server refused the login: {_text(response)}")
        response = await client.select(aioimaplib.quoted(box.get("folder") or "INBOX"))
        if response.result != "OK":
            raise ImapError(State.ERROR, f"cannot open folder {box.get('folder')!r}: {_text(response)}")
    except BaseException:
        await close_session(client, logout=False)
        raise
    info: dict[str, int | None] = {"uidvalidity": None, "uidnext": None, "exists": None}
    for line in response.lines:
        if not isinstance(line, (bytes, bytearray)):
            continue
        for name, value in _SELECT_CODE.findall(bytes(line)):
            info[name.decode().lower()] = int(value)
        m = _EXISTS.match(bytes(line).strip())
        if m:
            info["exists"] = int(m.group(1))
    return client, info


async def close_session(client: aioimaplib.IMAP4, *, logout: bool = True) -> None:
    """LOGOUT (unless the session failed: there may be nobody listening), and
    close the connection whatever happens."""
    try:
        if logout and client.protocol.state in (aioimaplib.NONAUTH, aioimaplib.AUTH, aioimaplib.SELECTED):
            await asyncio.wait_for(client.protocol.logout(), 5)
    except Exception:
        pass
    finally:
        task = getattr(client, "_client_task", None)  # the connection being made, if it is not yet
        if task is not None and not task.done():
            task.cancel()
        transport = client.protocol.transport
        if transport is not None:
            transport.close()


async def new_uids(client: aioimaplib.IMAP4, last_uid: int) -> list[tuple[int, int]]:
    """``(uid, size)`` of each message above ``last_uid``, in order. One
    ``UID FETCH last+1:* (UID RFC822.SIZE)`` gives both; ``*`` is the highest
    UID even when it is not newer, so older UIDs are dropped here."""
    response = await client.uid("fetch", f"{last_uid + 1}:*", "(UID RFC822.SIZE)")
    if response.result != "OK":
        raise ImapError(State.ERROR, f"UID FETCH refused: {_text(response)}")
    found: dict[int, int] = {}
    for line in response.lines:
        if not isinstance(line, (bytes, bytearray)) or not _FETCH_LINE.match(bytes(line)):
            continue
        uid, size = _UID.search(bytes(line)), _SIZE.search(bytes(line))
        if uid and size and int(uid.group(1)) > last_uid:
            found[int(uid.group(1))] = int(size.group(1))
    return sorted(found.items())


async def fetch_message(client: aioimaplib.IMAP4, uid: int) -> bytes | None:
    """The raw message of one UID (not marked ``\\Seen``); None when it is gone."""
    response = await client.uid("fetch", str(uid), "(BODY.PEEK[])")
    if response.result != "OK":
        raise ImapError(State.ERROR, f"UID FETCH {uid} refused: {_text(response)}")
    lines = response.lines
    answered = False
    for i, line in enumerate(lines[:-1]):
        # the one literal of the answer follows its FETCH line (``... BODY[] {SIZE}``)
        if isinstance(line, (bytes, bytearray)) and _FETCH_LINE.match(line):
            answered = answered or re.search(rb"\bUID %d\b" % uid, line) is not None
            if line.rstrip().endswith(b"}") and isinstance(lines[i + 1], (bytes, bytearray)):
                return bytes(lines[i + 1])
    if answered:
        # the server answered for the message in a shape we cannot read: never
        # skip it (it would be lost); the mailbox waits and tries again
        raise ImapError(State.ERROR, f"UID FETCH {uid}: an answer without the message in it")
    return None  # no answer for that UID: it was expunged meanwhile


def return_path(raw: bytes) -> str | None:
    """The envelope sender the delivering server wrote (``Return-Path``):
    ``""`` for the null sender (a bounce), None when there is none."""
    headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    value = headers.get("Return-Path")
    if value is None:
        return None
    value = str(value).strip()
    m = re.search(r"<([^>]*)>", value)
    return (m.group(1) if m else value).strip()


# --- the poller -----------------------------------------------------------------------------------------


class ImapPoller:
    """Reads every configured mailbox of the email bridge, every ``imap_poll_s``."""

    def __init__(self, connector: EmailConnector, link: LocalLink):
        self.connector = connector
        self.link = link
        self.cfg = connector.cfg
        self.db = link.bridges.hub.db
        self.bridge = link.name
        self.interval = max(0.05, float(self.cfg.imap_poll_s))
        self._task: asyncio.Task | None = None
        self._reading: dict[str, asyncio.Task] = {}
        """The mailboxes being read now: each on its own, so a slow server never holds up another."""
        self._handing_over: set[str] = set()
        """Mailboxes between ``submit`` and saving their position: ``stop()`` lets them finish."""
        self._stop = asyncio.Event()
        self._failures: dict[str, int] = {}
        self._next_at: dict[str, float] = {}
        self._problems: dict[str, tuple[State, str]] = {}
        self._reported: tuple[State, str | None] | None = None
        self._base: tuple[State, str | None] = (State.CONNECTED, None)

    def start(self) -> None:
        # aioimaplib's debug log would show the LOGIN line of a password with
        # a quote or backslash in it (its scrubbing misses the quoted form).
        imap_log = logging.getLogger("aioimaplib")
        if imap_log.getEffectiveLevel() < logging.INFO:
            imap_log.setLevel(logging.INFO)
        self._base = self.connector.state()
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name=f"imap-poller:{self.bridge}")

    async def stop(self) -> None:
        """Stop polling: the message being handed over is finished (for up to
        :data:`STOP_GRACE_S`), then whatever still runs is cancelled."""
        self._stop.set()
        tasks = [t for t in (self._task, *self._reading.values()) if t is not None]
        self._task = None
        if not tasks:
            return
        for box_id, task in self._reading.items():
            if box_id not in self._handing_over:  # IMAP I/O only: nothing is lost by stopping it now
                task.cancel()
        _done, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        self._reading.clear()

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.poll_once()
            except Exception:  # never let the poller die: the next round tries again
                log.exception("IMAP polling failed")
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval)
            except TimeoutError:
                pass

    async def poll_once(self) -> None:
        """One round: start reading every mailbox that is due and not being read."""
        boxes = await list_mailboxes(self.db, self.bridge)
        ids = {b.get("id") for b in boxes}
        forgot = False
        for known in (self._failures, self._next_at, self._problems):
            for gone in [k for k in known if k not in ids]:
                del known[gone]
                forgot = True
        if forgot:  # a failing mailbox was removed
            await self._report()
        now = time.monotonic()
        for box in boxes:
            box_id = box.get("id")
            if not box_id or box_id in self._reading or self._next_at.get(box_id, 0.0) > now or self._stop.is_set():
                continue
            task = asyncio.create_task(self._poll_box(box), name=f"imap:{box_id}")
            self._reading[box_id] = task
            task.add_done_callback(lambda _t, box_id=box_id: self._reading.pop(box_id, None))

    async def _poll_box(self, box: dict) -> None:
        try:
            await self._poll_box_once(box)
            await self._report()
        except Exception:  # never an unretrieved exception in a task
            log.exception("IMAP mailbox %s: polling failed", box.get("id"))

    async def _poll_box_once(self, box: dict) -> None:
        box_id = box.get("id", "?")
        problem: tuple[State, str] | None = None
        try:
            client, info = await open_session(box, dev=self.cfg.dev)
            try:
                await self._read(box, client, info)
            except BaseException:
                await close_session(client, logout=False)
                raise
            await close_session(client)
        except ImapError as exc:
            problem = (exc.state, exc.detail)
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            problem = (State.DISCONNECTED, f"cannot read {box.get('host')}:{box.get('port')}: {_network_error(exc)}")
        except Exception as exc:  # a bug, or a server answering nonsense: the hub goes on
            log.exception("IMAP mailbox %s could not be read", box_id)
            problem = (State.ERROR, f"{type(exc).__name__}: {exc}"[:300])
        if problem is None:
            self._failures.pop(box_id, None)
            self._next_at.pop(box_id, None)
            self._problems.pop(box_id, None)
            return
        failures = self._failures.get(box_id, 0) + 1
        self._failures[box_id] = failures
        wait = min(self.interval * 2 ** min(failures, 20), max(MAX_BACKOFF_S, self.interval))
        self._next_at[box_id] = time.monotonic() + wait
        self._problems[box_id] = (problem[0], f"imap {box_id}: {problem[1]}")
        log.warning("IMAP mailbox %s (%s@%s:%s): %s; trying again in %.0f s", box_id, box.get("user"),
                    box.get("host"), box.get("port"), problem[1], wait)

    async def _read(self, box: dict, client: aioimaplib.IMAP4, info: dict) -> None:
        box_id = box["id"]
        last_uid = int(box.get("last_uid") or 0)
        uidvalidity = info.get("uidvalidity")
        if uidvalidity is not None and box.get("uidvalidity") != uidvalidity:
            if box.get("uidvalidity") is not None:
                log.warning("IMAP mailbox %s: UIDVALIDITY changed (%s -> %s): reading the folder again from the start "
                            "(what was placed already is dropped as a duplicate)", box_id, box.get("uidvalidity"),
                            uidvalidity)
                last_uid = 0
            if not await update_mailbox(self.db, self.bridge, box_id, {"uidvalidity": uidvalidity, "last_uid": last_uid}):
                return
        if info.get("exists") == 0:
            return
        recipient = f"{box['owner']}@{self.cfg.mail_domain}"
        skipped = int(box.get("skipped") or 0)
        for uid, size in await new_uids(client, last_uid):
            if self._stop.is_set():
                return
            raw = None if size > self.cfg.max_mail_bytes else await fetch_message(client, uid)
            if raw is not None and len(raw) > self.cfg.max_mail_bytes:
                raw, size = None, len(raw)
            if raw is None and size > self.cfg.max_mail_bytes:
                skipped += 1
                log.warning("IMAP mailbox %s: message UID %s is %s bytes, over max_mail_bytes (%s): not taken",
                            box_id, uid, size, self.cfg.max_mail_bytes)
                values = {"last_uid": uid, "skipped": skipped,
                          "last_skipped": {"uid": uid, "size": size, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
            elif raw is None:
                log.warning("IMAP mailbox %s: message UID %s went away before it was read", box_id, uid)
                values = {"last_uid": uid}
            else:
                values = {"last_uid": uid}
            self._handing_over.add(box_id)
            try:
                if raw is not None:
                    await self.link.submit(raw, sender=return_path(raw), recipients=[recipient])
                if not await update_mailbox(self.db, self.bridge, box_id, values):
                    return  # removed meanwhile
            finally:
                self._handing_over.discard(box_id)

    async def _report(self) -> None:
        """The bridge's state: the worst problem of a mailbox, or, when all read
        again, what it was before (unless something else changed it since)."""
        if self._problems:
            rank = {State.BAD_CREDENTIALS: 0, State.ERROR: 1, State.DISCONNECTED: 2}
            problems = sorted(self._problems.values(), key=lambda p: (rank.get(p[0], 3), p[1]))
            state, detail = problems[0]
            if len(problems) > 1:
                detail += f" (and {len(problems) - 1} more mailbox(es) failing)"
            await self.connector.set_state(state, detail)
            self._reported = self.connector.state()
        elif self._reported is not None:
            if self.connector.state() == self._reported:
                await self.connector.set_state(*self._base)
            self._reported = None

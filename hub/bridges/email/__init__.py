"""The email bridge: an SMTP (or LMTP) listener in, SMTP submission out.

In: ``smtp_listen`` accepts mail for ``mail_domain`` only: ``acme@DOMAIN``
(any local actor, customer or organization, that is not a bridged person),
``acme+TOKEN@DOMAIN`` (a conversation's reply address), ``bounces+TXN@DOMAIN``
(bounces of our sends). Each accepted message is stored raw and queued
before the 250 answer; everything else is decided by the worker
(:func:`hub.bridges.email.parse.parse`). Refused at once, with a readable
reply: unknown recipients (550 5.1.1), other domains (550 5.7.1), too many
recipients (452), a message over ``max_mail_bytes`` (552), a message with no
From header (550 5.6.0). Also in: support mailboxes an actor keeps at its
mail provider, polled over IMAP (:mod:`hub.bridges.email.imap`).

Out: each send is one message submitted to ``smtp_relay`` (STARTTLS by
default, implicit TLS or none by configuration), DKIM-signed when a key is
configured. A 5xx answer fails the send for good; anything else is tried
again by the job queue.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import functools
import logging
from pathlib import Path

import aiosmtplib
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from hub.bridges.base import Capabilities, Connector, Envelope, Outbound, Rejected, SendError, State
from hub.bridges.email import auth, compose, parse
from hub.config import Config

log = logging.getLogger(__name__)
MAX_RECIPIENTS = 50


class EmailConnector(Connector):
    kind = "email"
    capabilities = Capabilities(edits=False, deletes=False, reactions=False, attachments=True, threading=True,
                                direct_messages=True, read_receipts=False)

    _imap = None
    """The IMAP poller (:mod:`hub.bridges.email.imap`) while it runs."""

    def __init__(self, cfg: Config, name: str = "email", *, dnsfunc: auth.DnsFunc | None = None):
        super().__init__(name)
        self.cfg = cfg
        self.settings_ = parse.Settings(mail_domain=cfg.mail_domain, max_attachment_bytes=cfg.max_attachment_bytes)
        if dnsfunc is None and cfg.mail_dns_file and cfg.dev:
            dnsfunc = auth.dns_from_file(cfg.mail_dns_file)
        self.dnsfunc = dnsfunc
        self.trusted = frozenset(x.strip().lower() for x in cfg.mail_trusted_authserv_ids.split(",") if x.strip())
        self._server: asyncio.AbstractServer | None = None
        self._dkim_key: bytes | None = None
        if cfg.dkim_key and cfg.dkim_selector:
            self._dkim_key = Path(cfg.dkim_key).expanduser().read_bytes()

    # --- listening ---------------------------------------------------------------------------

    async def start(self, link) -> None:
        self.link = link
        if not self.cfg.smtp_listen:
            relay = f"sending through {self.cfg.smtp_relay}" if self.cfg.smtp_relay else "no smtp_relay: cannot send"
            await self.set_state(State.CONNECTED, f"no smtp_listen; {relay}")
        else:
            await self._listen()
        from hub.bridges.core import LocalLink

        if isinstance(link, LocalLink):  # the mailboxes to poll live in the hub's database
            from hub.bridges.email.imap import ImapPoller

            if self._imap is not None:
                await self._imap.stop()
            self._imap = ImapPoller(self, link)
            self._imap.start()

    async def _listen(self) -> None:
        host, port = self.cfg.smtp_listen.rsplit(":", 1)
        handler = _Handler(self)
        protocol = LMTP if self.cfg.lmtp else SMTP
        factory = functools.partial(
            protocol, handler, hostname=self.cfg.mail_domain, data_size_limit=self.cfg.max_mail_bytes,
            enable_SMTPUTF8=True, decode_data=False, ident="Roundtable ESMTP",
        )
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(factory, host or "127.0.0.1", int(port))
        await self.set_state(State.CONNECTED, f"listening on {self.cfg.smtp_listen} ({'LMTP' if self.cfg.lmtp else 'SMTP'})")

    async def stop(self) -> None:
        if self._imap is not None:
            await self._imap.stop()
            self._imap = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self.set_state(State.STOPPED)

    # --- reading ------------------------------------------------------------------------------

    async def receive(self, raw: bytes, *, sender: str | None = None, recipients: list[str] | None = None) -> Envelope | Rejected:
        result = parse.parse(raw, network=self.name, sender=sender, recipients=list(recipients or []),
                             settings=self.settings_)
        if isinstance(result, Rejected):
            return result
        from_domain = result.sender.remote_id.rsplit("@", 1)[-1]
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
        verdict = await asyncio.to_thread(
            auth.check, raw, auth.results_from_our_side(headers.items()) if self.cfg.lmtp else [], from_domain,
            trusted=self.trusted, dnsfunc=self.dnsfunc,
        )
        result.sender.authenticated = verdict.authenticated
        if not verdict.authenticated:
            result.flags.append("unauthenticated")
        return result

    # --- sending ------------------------------------------------------------------------------

    async def send(self, outbound: Outbound) -> str:
        if not self.cfg.smtp_relay:
            await self.set_state(State.ERROR, "no smtp_relay configured")
            raise SendError("no SMTP relay is configured (smtp_relay)")
        try:
            msg, mail_from, message_id = compose.compose(outbound, mail_domain=self.cfg.mail_domain)
            data = msg.as_bytes()
            rcpt = compose.wire_address(outbound.to)
        except (ValueError, TypeError, LookupError) as exc:  # nothing a retry would change
            raise SendError(f"cannot write this mail: {exc}"[:500], permanent=True) from None
        await self.submit(data, mail_from, [rcpt])
        return message_id

    async def submit(self, data: bytes, mail_from: str, to: list[str]) -> None:
        """Hand one message to the relay, DKIM-signed when a key is configured
        (the bridge's mail and the hub's own, ``hub.mail``, alike)."""
        if not self.cfg.smtp_relay:
            raise SendError("no SMTP relay is configured (smtp_relay)")
        if self._dkim_key is not None:
            data = compose.dkim_sign(data, selector=self.cfg.dkim_selector, domain=self.cfg.mail_domain,
                                     private_key=self._dkim_key)
        host, port = self.cfg.smtp_relay.rsplit(":", 1)
        tls = self.cfg.smtp_relay_tls
        try:
            await aiosmtplib.send(
                data, sender=mail_from, recipients=to, hostname=host, port=int(port),
                username=self.cfg.smtp_relay_user or None, password=self.cfg.smtp_relay_password or None,
                use_tls=tls == "tls", start_tls=True if tls == "starttls" else False, timeout=30,
                local_hostname=self.cfg.mail_domain,
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            await self.set_state(State.BAD_CREDENTIALS, f"the relay refused our login: {exc.code}")
            raise SendError(f"the SMTP relay refused our login ({exc.code})") from None
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            permanent = all(500 <= c < 600 for c in codes)
            detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            raise SendError(f"the relay refused the recipient: {detail}"[:500], permanent=permanent) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise SendError(f"the relay answered {exc.code} {exc.message}"[:500], permanent=500 <= exc.code < 600) from None
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            await self.set_state(State.DISCONNECTED, f"cannot reach the relay: {type(exc).__name__}")
            raise SendError(f"cannot reach the SMTP relay: {type(exc).__name__}: {exc}"[:500]) from None
        await self.set_state(State.CONNECTED, self._state_detail if self._state == State.CONNECTED else None)


class _Handler:
    """aiosmtpd hooks: decide what to accept; store before answering 250."""

    def __init__(self, connector: EmailConnector):
        self.c = connector

    async def handle_RCPT(self, server, session: Session, envelope: SmtpEnvelope, address: str, rcpt_options):
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        mine = parse.split_address(address, self.c.cfg.mail_domain)
        if mine is None:
            return f"550 5.7.1 Relaying denied: this server takes mail for {self.c.cfg.mail_domain} only"
        name, token = mine
        if name == self.c.settings_.bounce_prefix and token:
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 OK"
        if not await self.c.link.accepts_recipient(name):
            return f"550 5.1.1 No mailbox here by that name: {address}"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session: Session, envelope: SmtpEnvelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="surrogateescape")
        status = await self._data(raw, envelope)
        if isinstance(server, LMTP):
            # LMTP answers DATA once per accepted recipient (RFC 2033 4.2); the
            # item is stored once for all of them, so they share one fate.
            return "\r\n".join([status] * max(1, len(envelope.rcpt_tos)))
        return status

    async def _data(self, raw: bytes, envelope: SmtpEnvelope) -> str:
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
        if not headers.get("From"):
            return "550 5.6.0 The message has no From header"
        try:
            item_id = await self.c.link.submit(raw, sender=envelope.mail_from, recipients=list(envelope.rcpt_tos))
        except Exception:
            log.exception("could not store an inbound mail")
            return "451 4.3.0 Temporary failure, please try again later"
        return f"250 2.0.0 OK: queued as {item_id}"

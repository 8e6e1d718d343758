"""Mail the hub writes itself (password resets, notifications), through the
configured relay (``smtp_relay``), marked ``Auto-Submitted: auto-generated``
and DKIM-signed like the email bridge's mail."""

from __future__ import annotations

import email.utils
from email.message import EmailMessage
from typing import TYPE_CHECKING

from hub.errors import HubError, TransientError

if TYPE_CHECKING:
    from hub.context import Hub


async def send_system_mail(hub: Hub, *, to: str, subject: str, text: str, message_id: str | None = None) -> None:
    """Send one plain-text mail. ``message_id`` (``<...@mail_domain>``) is given
    by callers that may repeat a send (a job run again), so that the repeat
    can be recognised. A relay that cannot be reached or answers 4xx raises a
    ``TransientError``; one that refuses for good (5xx) a permanent ``HubError``."""
    from hub.bridges.email import EmailConnector
    from hub.bridges.email.compose import one_line, wire_address

    cfg = hub.cfg
    if not cfg.smtp_relay:
        raise HubError("this server cannot send mail (no smtp_relay is configured): ask its administrator",
                       status=503)
    msg = EmailMessage()
    msg["From"] = email.utils.formataddr((cfg.instance_name, f"no-reply@{cfg.mail_domain}"))
    msg["To"] = wire_address(to)
    msg["Subject"] = one_line(subject, 200)
    msg["Date"] = email.utils.formatdate(usegmt=True)
    msg["Message-ID"] = message_id or email.utils.make_msgid(domain=cfg.mail_domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(text)
    connector = hub.bridges.connectors.get("email") if hub.bridges is not None else None
    if connector is None:
        connector = EmailConnector(cfg)
    from hub.bridges.base import SendError

    try:
        await connector.submit(msg.as_bytes(), f"no-reply@{cfg.mail_domain}", [wire_address(to)])
    except SendError as exc:
        error = HubError if exc.permanent else TransientError
        raise error("the mail could not be sent; try again later", detail=str(exc), status=503) from None

"""Outbound mail: a proper message for each send, signed with DKIM when a key is set.

Every message has a ``Message-ID`` of our domain that carries the send's
transaction id (so a reply finds its conversation through the message map,
and an echo is recognised), ``In-Reply-To`` and ``References`` naming the
conversation's earlier mail, a plain-text part (and an HTML alternative),
``X-Roundtable-Txn`` and ``X-Roundtable-Hops`` against loops, and
``Auto-Submitted: auto-generated`` when the hub wrote it rather than a
person. The envelope sender is ``bounces+TXN@domain``, so a bounce names the
send that bounced.
"""

from __future__ import annotations

import email.policy
import email.utils
import re
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

import dkim

from hub.bridges.base import Outbound, SendError

SIGNED_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id", b"in-reply-to", b"references",
                  b"mime-version", b"content-type", b"auto-submitted"]


_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def one_line(value: str | None, limit: int) -> str:
    """A header value on one line: line breaks and control characters become spaces."""
    return _BREAKS.sub(" ", value or "").strip()[:limit]


def wire_address(addr: str) -> str:
    """The address as it goes in RCPT TO (an internationalised domain in IDNA)."""
    a = _address(None, addr)
    return f"{a.username}@{a.domain}"


def _address(name: str | None, addr: str) -> Address:
    local, _, domain = addr.rpartition("@")
    if not local.isascii():
        # an internationalised mailbox needs SMTPUTF8 end to end; the relay may not offer it
        raise SendError(f"cannot send to {addr!r}: a non-ASCII mailbox name needs SMTPUTF8", permanent=True)
    try:
        domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        raise SendError(f"cannot send to {addr!r}: not a valid domain", permanent=True) from None
    return Address(display_name=one_line(name, 120), username=local, domain=domain)


def compose(out: Outbound, *, mail_domain: str) -> tuple[EmailMessage, str, str]:
    """``(message, envelope sender, message id without brackets)``."""
    msg = EmailMessage(policy=email.policy.SMTP)
    local = f"{out.from_username}+{out.reply_token}" if out.reply_token else out.from_username
    msg["From"] = _address(out.from_name, f"{local}@{mail_domain}")
    msg["To"] = _address(out.to_name, out.to)
    subject = (out.subject or "").strip()
    if out.references:
        subject = subject if subject.lower().startswith("re:") else f"Re: {subject}" if subject else "Re: your message"
    elif not subject:
        subject = f"Message from {out.from_name}"
    if out.kind == "correction":
        subject = f"{subject} (correction)"
    msg["Subject"] = one_line(subject, 250)
    msg["Date"] = email.utils.formatdate(usegmt=True)
    message_id = f"{out.txn_id}@{mail_domain}"
    msg["Message-ID"] = f"<{message_id}>"
    if out.references:
        msg["In-Reply-To"] = f"<{out.references[-1]}>"
        msg["References"] = " ".join(f"<{r}>" for r in out.references[-10:])
    msg["X-Roundtable-Txn"] = out.txn_id
    msg["X-Roundtable-Hops"] = str(out.hops)
    if out.automatic:
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Auto-Response-Suppress"] = "All"
    if out.conversation_uri:
        msg["X-Roundtable-Conversation"] = out.conversation_uri
    msg.set_content(out.text)
    msg.add_alternative(f"<!DOCTYPE html><html><body>{out.html}</body></html>", subtype="html")
    for a in out.attachments:
        maintype, _, subtype = a.content_type.partition("/")
        msg.add_attachment(Path(a.path).read_bytes(), maintype=one_line(maintype, 60) or "application",
                           subtype=one_line(subtype, 60) or "octet-stream", filename=one_line(a.filename, 200) or "file")
    return msg, f"bounces+{out.txn_id}@{mail_domain}", message_id


def dkim_sign(data: bytes, *, selector: str, domain: str, private_key: bytes) -> bytes:
    """The message with a ``DKIM-Signature`` header in front (relaxed/relaxed)."""
    signature = dkim.sign(data, selector.encode(), domain.encode(), private_key, include_headers=SIGNED_HEADERS,
                          canonicalize=(b"relaxed", b"relaxed"))
    return signature + data

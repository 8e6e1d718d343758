"""An RFC 5322 message as an envelope, or why it is none.

Reads what real clients and servers send: Outlook, Gmail, Apple Mail and
Thunderbird quoting styles, ``format=flowed``, HTML-only mail, base64 and
quoted-printable bodies, legacy charsets (and wrongly declared ones),
RFC 3464 delivery status notifications, auto-replies and list mail.
Nothing here raises on bad input that a caller could not also store: a
message that cannot be read at all is flagged by the caller, raw.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.header
import email.policy
import email.utils
import hashlib
import re
from email.message import EmailMessage, Message

import html2text
from mailparser_reply.parser import EmailMessage as ParsedMail

from hub.bridges.base import Attachment, Envelope, Rejected, Sender

LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pl", "sv", "da", "cs"]
# Subjects auto-replies put in front ("Automatic reply: ...", "Out of Office: ..."):
# the phrase, then a colon (or nothing else), so that "Absence of refund" stays a message.
AUTO_SUBJECTS = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|auto|out of (the )?office( auto ?reply)?|abwesend|"
    r"abwesenheit(snotiz)?|r[ée]ponse automatique|respuesta autom[áa]tica|risposta automatica|"
    r"automatisch antwoord|autosvar|fuera de la oficina|absence|automatische antwort)\s*(:|$)",
    re.I,
)
BOUNCE_SUBJECTS = re.compile(
    r"(undeliver(ed|able)|delivery (status notification|failure|has failed)|returned mail|mail delivery failed|"
    r"failure notice|unzustellbar|non remis|non recapitabile)",
    re.I,
)
DAEMONS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.I)
MSGID = re.compile(r"<([^<>\s]+)>")
LATIN1_LABELS = {"iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "iso_8859-1", "cp819", "ibm819"}
MAX_ATTACHMENTS = 20


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    mail_domain: str
    max_attachment_bytes: int = 10 * 1024 * 1024
    bounce_prefix: str = "bounces"


def message_ids(value: str | None) -> list[str]:
    """The ids in a Message-ID / In-Reply-To / References header, without brackets."""
    if not value:
        return []
    found = MSGID.findall(str(value))
    if not found and str(value).strip() and " " not in str(value).strip():
        found = [str(value).strip()]  # some clients omit the brackets
    return found


def _header(msg: Message, name: str) -> str | None:
    try:
        value = msg.get(name)
    except Exception:  # a header the parser cannot decode: read it raw
        value = None
        for k, v in msg.raw_items() if hasattr(msg, "raw_items") else []:
            if k.lower() == name.lower():
                value = str(v)
                break
    if isinstance(value, email.header.Header):
        # 8-bit bytes in the header (compat32 hides them in an unknown-8bit
        # Header): UTF-8 as RFC 6532 allows over SMTPUTF8, else a legacy charset
        raw = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), None)
        if isinstance(raw, str):
            try:
                data = raw.encode("ascii", "surrogateescape")
                try:
                    value = data.decode("utf-8")
                except UnicodeDecodeError:
                    value = data.decode("cp1252", errors="replace")
            except UnicodeEncodeError:
                value = raw
    return str(value) if value is not None else None


def _all_headers(msg: Message, name: str) -> list[str]:
    try:
        return [str(v) for v in msg.get_all(name) or []]
    except Exception:
        return []


def split_address(addr: str, mail_domain: str) -> tuple[str, str | None] | None:
    """``acme+token@domain`` → ``("acme", "token")`` if it is one of ours."""
    addr = addr.strip().strip("<>")
    if "@" not in addr:
        return None
    local, domain = addr.rsplit("@", 1)
    if domain.lower() != mail_domain.lower():
        return None
    name, _, token = local.partition("+")
    return name.lower(), (token or None)


def _flowed(text: str, delsp: bool) -> str:
    """Undo RFC 3676 ``format=flowed`` soft line breaks.

    Quoted lines join only lines of the same quote depth, without repeating
    their ``>`` marks (RFC 3676 4.5); they come out as ``> text``.
    """
    out: list[str] = []
    buf = ""
    buf_depth: int | None = None  # the quote depth of the paragraph being joined, if any
    for line in text.split("\n"):
        line = line.rstrip("\r")
        depth = len(line) - len(line.lstrip(">"))
        quote, line = line[:depth], line[depth:]
        if buf_depth is not None and depth != buf_depth:  # a flowed line never continues at another depth
            out.append(buf)
            buf, buf_depth = "", None
        if line.startswith(" "):
            line = line[1:]  # space-stuffing
        if buf_depth is None:
            buf = f"{quote} " if quote and line else quote
        if line == "-- ":  # the signature separator is never flowed
            if buf_depth is not None:
                out.append(buf)
                buf = f"{quote} " if quote else ""
            out.append(buf + line)
            buf, buf_depth = "", None
            continue
        if line.endswith(" "):
            buf += line[:-1] if delsp else line
            buf_depth = depth
        else:
            out.append(buf + line)
            buf, buf_depth = "", None
    if buf_depth is not None:
        out.append(buf)
    return "\n".join(out)


def _text_of(part: Message, flags: list[str]) -> str:
    """A text part's content, decoded whatever it claims to be."""
    payload = part.get_payload(decode=True) or b""
    charset = part.get_content_charset() or "us-ascii"
    if charset in LATIN1_LABELS:
        # Windows-1252 labelled ISO-8859-1 (web forms, older clients): read as
        # browsers do (WHATWG Encoding); they differ only in 0x80-0x9f, control
        # codes in ISO-8859-1 that no text means
        try:
            payload.decode("cp1252")
            charset = "cp1252"
        except UnicodeDecodeError:
            pass
    try:
        text = payload.decode(charset)
    except (LookupError, UnicodeDecodeError):
        # Unknown or wrong charset: UTF-8 is what it most often really is,
        # then Windows-1252, which decodes any byte.
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            text = payload.decode("cp1252", errors="replace")
        if "bad_encoding" not in flags:
            flags.append("bad_encoding")
    if "\ufffd" in text and "bad_encoding" not in flags:
        flags.append("bad_encoding")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if part.get_content_subtype() == "plain" and (part.get_param("format") or "").lower() == "flowed":
        text = _flowed(text, (part.get_param("delsp") or "").lower() == "yes")
    return text


def html_to_text(html: str) -> str:
    h = html2text.HTML2Text()
    h.body_width = 0
    h.ignore_images = True
    h.ignore_emphasis = True
    h.unicode_snob = True
    h.single_line_break = False
    text = h.handle(html)
    # html2text escapes what Markdown would read as a list or a rule ("\- ",
    # "1\.", "\--"); the text is read as it is, so take those escapes off
    text = re.sub(r"^(\s*)\\([-+])", r"\1\2", text, flags=re.M)
    text = re.sub(r"^(\s*\d+)\\\.", r"\1.", text, flags=re.M)
    text = re.sub(r"\\(\\)(?=[\\`*_{}\[\]()#+\-.!])", r"\1", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _is_attachment(part: Message) -> bool:
    disposition = (part.get_content_disposition() or "").lower()
    if disposition == "attachment":
        return True
    if part.get_content_maintype() in ("text", "multipart"):
        return False
    return _filename(part) is not None or part.get_content_maintype() in ("image", "application", "audio", "video")


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except (TypeError, ValueError):  # broken RFC 2231 continuations: CPython's decode_params raises on them
        return None
    if name and "=?" in name:  # RFC 2047 words in the parameter (Gmail, Outlook): not the standard, but usual
        name = _decode(name)
    return name


def bodies(msg: Message, flags: list[str], settings: Settings) -> tuple[str, list[Attachment]]:
    """The best text of a message, and its attachments."""
    plain = html = None
    files: list[Attachment] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if _is_attachment(part):
            data = part.get_payload(decode=True) or b""
            if len(files) >= MAX_ATTACHMENTS or len(data) > settings.max_attachment_bytes:
                if "attachment_dropped" not in flags:
                    flags.append("attachment_dropped")
                continue
            name = _filename(part) or f"attachment-{len(files) + 1}"
            files.append(Attachment(filename=_safe_filename(name), content_type=ctype, data=data))
            continue
        if ctype == "text/plain" and plain is None:
            plain = _text_of(part, flags)
        elif ctype == "text/html" and html is None:
            html = _text_of(part, flags)
    if plain is not None and plain.strip():
        return plain, files
    if html is not None:
        return html_to_text(html), files
    return plain or "", files


def _safe_filename(name: str) -> str:
    name = re.sub(r"[\x00-\x1f/\\]", "_", str(name)).strip().strip(".") or "attachment"
    return name[:200]


def strip_quotes(text: str) -> str:
    """The new part of a reply: quoted history and signatures taken off."""
    text = text.strip()
    if not text:
        return ""
    try:
        # keep_hyphen_lists: "- item" lines are a list in a reply, not a signature
        parsed = ParsedMail(text=text, languages=list(LANGUAGES), keep_hyphen_lists=True).read()
        latest = parsed.replies[0].body.strip() if parsed.replies else ""
    except Exception:  # the parser is heuristic: on any trouble keep the whole text
        return text
    # "> quoted" lines left at the end by clients that bottom-quote
    lines = latest.split("\n")
    for i, line in enumerate(lines):  # the RFC 3676 signature separator ends the text
        if line.rstrip() == "--" and i > 0:
            lines = lines[:i]
            break
    while lines and (lines[-1].startswith(">") or not lines[-1].strip()):
        lines.pop()
    # a reply written below the quote (Thunderbird's and mutt's default): one
    # quoted block first, then the new text; an interleaved reply keeps its quotes
    head = 0
    while head < len(lines) and (lines[head].startswith(">") or not lines[head].strip()):
        head += 1
    if head and not any(line.startswith(">") for line in lines[head:]):
        lines = lines[head:]
    latest = "\n".join(lines).strip()
    return latest or text


def _dsn(msg: Message) -> tuple[str | None, str | None, str | None, str | None]:
    """``(recipient, action, status, diagnostic)`` of a delivery status report's first recipient."""
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if isinstance(blocks, list):
            fields: dict[str, str] = {}
            for block in blocks[1:] or blocks:  # the first block is per-message
                for k, v in block.items():
                    fields.setdefault(k.lower(), str(v))
                if "final-recipient" in fields or "original-recipient" in fields:
                    break
        else:  # the parser left it as text
            fields = {}
            for line in str(blocks).splitlines():
                if ":" in line:
                    k, v = line.split(":", 1)
                    fields.setdefault(k.strip().lower(), v.strip())
        recipient = fields.get("final-recipient") or fields.get("original-recipient")
        if recipient and ";" in recipient:
            recipient = recipient.split(";", 1)[1].strip()
        return recipient, (fields.get("action") or "").lower() or None, fields.get("status"), fields.get("diagnostic-code")
    return None, None, None, None


def _original(msg: Message) -> Message | None:
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            payload = part.get_payload()
            return payload[0] if isinstance(payload, list) and payload else None
        if ctype == "text/rfc822-headers":
            raw = part.get_payload(decode=True) or b""
            return email.message_from_bytes(raw, policy=email.policy.compat32)
    return None


def classify(msg: Message, *, sender: str | None, recipients: list[str], settings: Settings) -> Rejected | None:
    """Bounces, auto-replies, list mail and loops: never messages."""
    ours = [split_address(r, settings.mail_domain) for r in recipients]
    verp = next((tok for o in ours if o and o[0] == settings.bounce_prefix for tok in [o[1]]), None)
    ctype = msg.get_content_type()
    report = ctype == "multipart/report" and (msg.get_param("report-type") or "").lower() == "delivery-status"
    from_header = _header(msg, "From") or ""
    null_sender = sender is not None and sender.strip("<> ") == ""
    subject = _header(msg, "Subject") or ""
    daemon = null_sender or DAEMONS.match(email.utils.parseaddr(from_header)[1] or "")
    # A bounce is a delivery report, or a daemon's (or null sender's) mail that
    # says so. Anything else that comes to the bounce address is an automatic
    # answer (RFC 3834 sends vacation replies there): never a bounce.
    if report or (daemon and BOUNCE_SUBJECTS.search(subject)):
        recipient, action, status, diagnostic = _dsn(msg)
        original = _original(msg)
        original_id = None
        original_txn = None
        if original is not None:
            ids = message_ids(_header(original, "Message-ID"))
            original_id = ids[0] if ids else None
            original_txn = _header(original, "X-Roundtable-Txn")
        permanent = action == "failed" and (status or "5").strip().startswith("5") if action else bool(report or verp)
        if status and status.strip().startswith("4"):
            permanent = False
        if action == "delayed":
            permanent = False
        reason = " ".join(x for x in (f"status {status}" if status else None, diagnostic, action) if x) or "bounce"
        return Rejected(
            reason=f"bounce: {reason}"[:1000], flags=["bounce"], bounce_of=verp or (original_txn or "").strip() or original_id,
            bounced_recipient=recipient.lower() if recipient else None, permanent=permanent,
        )
    if verp is not None:
        return Rejected(reason="an automatic answer to the bounce address, no delivery report", flags=["auto_reply"])
    auto = (_header(msg, "Auto-Submitted") or "no").strip().lower()
    precedence = (_header(msg, "Precedence") or "").strip().lower()
    if auto != "no" and auto:
        return Rejected(reason=f"automatic message (Auto-Submitted: {auto})", flags=["auto_reply"])
    if any(_header(msg, h) is not None for h in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Auto-Reply")):
        return Rejected(reason="automatic reply (X-Autoreply)", flags=["auto_reply"])
    if precedence in ("bulk", "junk", "auto_reply"):
        return Rejected(reason=f"bulk or automatic mail (Precedence: {precedence})", flags=["auto_reply"])
    if precedence == "list" or _header(msg, "List-Id") is not None or _header(msg, "List-Unsubscribe") is not None:
        return Rejected(reason="mailing-list mail", flags=["list"])
    if AUTO_SUBJECTS.search(subject):
        return Rejected(reason=f"automatic reply ({subject[:60]})", flags=["auto_reply"])
    if null_sender:
        return Rejected(reason="a message from the null sender that is no delivery report", flags=["auto_reply"])
    loop = _header(msg, "X-Loop") or ""
    if settings.mail_domain.lower() in loop.lower():
        return Rejected(reason="mail loop (X-Loop names us)", flags=["loop"])
    from_addr = email.utils.parseaddr(from_header)[1]
    if split_address(from_addr, settings.mail_domain) is not None:
        return Rejected(reason="mail from our own domain came back", flags=["loop"], echo=True)
    return None


def parse(raw: bytes, *, network: str, sender: str | None, recipients: list[str], settings: Settings) -> Envelope | Rejected:
    """One email as an envelope (authentication is judged by the caller)."""
    try:
        return _parse(raw, network=network, sender=sender, recipients=recipients, settings=settings)
    except (TypeError, ValueError, LookupError, IndexError, AttributeError) as exc:
        # the standard library's parser still raises on some broken MIME
        # (RFC 2231 continuations mixed with a plain parameter, for one)
        return Rejected(reason=f"an unreadable message: {type(exc).__name__}: {exc}"[:1000], flags=["malformed"])


def _parse(raw: bytes, *, network: str, sender: str | None, recipients: list[str], settings: Settings) -> Envelope | Rejected:
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    rejected = classify(msg, sender=sender, recipients=recipients, settings=settings)
    if rejected is not None:
        return rejected
    flags: list[str] = []
    if getattr(msg, "defects", None):
        flags.append("malformed")
    from_header = _header(msg, "From")
    if not from_header:
        return Rejected(reason="no From header", flags=["malformed", "no_sender"])
    decoded_from = _decode(from_header)
    name, addr = email.utils.parseaddr(decoded_from)
    if not addr or "@" not in addr:
        return Rejected(reason=f"an unreadable From header: {decoded_from[:100]!r}", flags=["malformed", "no_sender"])
    addr = addr.strip().lower()
    ids = message_ids(_header(msg, "Message-ID"))
    if ids:
        remote_id = ids[0]
    else:
        remote_id = hashlib.sha256(raw).hexdigest() + "@no-message-id"
        flags.append("no_message_id")
    refs = message_ids(_header(msg, "In-Reply-To")) + list(reversed(message_ids(_header(msg, "References"))))
    usernames, token = [], None
    for r in recipients:
        mine = split_address(r, settings.mail_domain)
        if mine and mine[0] != settings.bounce_prefix:
            usernames.append(mine[0])
            token = token or mine[1]
    published = None
    date = _header(msg, "Date")
    if date:
        try:
            published = email.utils.parsedate_to_datetime(date)
            if published.tzinfo is None:
                published = published.replace(tzinfo=dt.timezone.utc)
        except (TypeError, ValueError, IndexError):
            flags.append("bad_date")
    text, files = bodies(msg, flags, settings)
    hops = 0
    try:
        hops = int((_header(msg, "X-Roundtable-Hops") or "0").strip())
    except ValueError:
        pass
    return Envelope(
        network=network,
        remote_id=remote_id,
        sender=Sender(remote_id=addr, display_name=(name or "").strip() or None, authenticated=False),
        text=strip_quotes(text),
        recipients=usernames,
        subject=_decode(_header(msg, "Subject") or "") or None,
        reply_to=list(dict.fromkeys(refs)),
        thread_token=token,
        attachments=files,
        flags=flags,
        published=published,
        txn_id=(_header(msg, "X-Roundtable-Txn") or "").strip() or None,
        hops=hops,
    )


def _decode(value: str) -> str:
    """An RFC 2047 encoded header as text (undecodable words kept as they are)."""
    try:
        parts = email.header.decode_header(value)
    except Exception:
        return value
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            try:
                out.append(chunk.decode(charset or "utf-8"))
            except (LookupError, UnicodeDecodeError):
                out.append(chunk.decode("utf-8", errors="replace"))
        else:
            out.append(chunk)
    return re.sub(r"\s+", " ", "".join(out)).strip()


def as_email_message(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)

"""The one connector every network implements, and the envelopes it speaks.

A connector has the same verbs whatever its network:

* ``receive(item)``: a raw inbound item (an RFC 5322 message, a JSON event)
  becomes an :class:`Envelope`, or a :class:`Rejected` saying why it must
  not become a message (a bounce, an auto-reply, a loop, bad input);
* ``send(outbound)``: an :class:`Outbound` goes out; the answer is the
  remote id the network gave it;
* ``start(link)`` / ``stop()``: begin and end its connections (listeners,
  pollers); ``link`` is how it hands raw items to the hub and reports its
  state, the same whether it runs inside ``roundtable serve`` or as a
  separate process speaking the bridge API;
* ``state()``: its connection state.

What a network can carry is declared in :class:`Capabilities`, never found by
``if network == ...``: the hub degrades what a network cannot carry, visibly
(an edit becomes a new message marked as a correction, a deletion a notice,
an attachment a link).
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import enum
from typing import Any, Protocol


class State(enum.StrEnum):
    """A bridge's connection state, as stored and shown."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    """A transient disconnect: it is trying again by itself."""
    BAD_CREDENTIALS = "bad_credentials"
    ERROR = "error"
    STOPPED = "stopped"


@dataclasses.dataclass(frozen=True, slots=True)
class Capabilities:
    """What a network can carry. Each flag is documented in the README."""

    edits: bool = False
    """A sent message can be changed in place."""
    deletes: bool = False
    """A sent message can be withdrawn."""
    reactions: bool = False
    """Emoji reactions to a message."""
    attachments: bool = False
    """Files travel with a message."""
    threading: bool = False
    """Replies can name what they answer, so a thread stays one thread."""
    direct_messages: bool = True
    """Messages can go to one person privately."""
    read_receipts: bool = False
    """The network tells when a message was read."""

    def as_dict(self) -> dict[str, bool]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(slots=True)
class Sender:
    """Who wrote an inbound item, as the network names them."""

    remote_id: str
    """The network's id: an email address (lower case), a phone number, a JID."""
    display_name: str | None = None
    authenticated: bool = True
    """False when the network could not prove the sender (an email without a
    valid DKIM signature or upstream authentication)."""


@dataclasses.dataclass(slots=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclasses.dataclass(slots=True)
class Envelope:
    """One inbound message, as every network converts it at its edge."""

    network: str
    """The bridge's name: the namespace of its identities and remote ids."""
    remote_id: str
    """The network's id of this message (an email's Message-ID)."""
    sender: Sender
    text: str
    """The cleaned text as people should see it (quoted history and
    signatures stripped where the network quotes)."""
    recipients: list[str] = dataclasses.field(default_factory=list)
    """Local usernames it was addressed to (for a first message)."""
    subject: str | None = None
    reply_to: list[str] = dataclasses.field(default_factory=list)
    """Remote ids it answers or refers to, most specific first."""
    thread_token: str | None = None
    """A conversation's reply token, if it came to a per-conversation address."""
    attachments: list[Attachment] = dataclasses.field(default_factory=list)
    flags: list[str] = dataclasses.field(default_factory=list)
    """E.g. ``unauthenticated``, ``bad_encoding``, ``attachment_dropped``."""
    published: dt.datetime | None = None
    part: int = 0
    txn_id: str | None = None
    """Our own transaction tag, if the item carries one (an echo of ours)."""
    hops: int = 0
    """How many bridges it has passed (a loop guard)."""
    edit_of: str | None = None
    """The remote id of the message this one changes, where the network edits."""

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["published"] = self.published.isoformat() if self.published else None
        data["attachments"] = [
            {"filename": a.filename, "content_type": a.content_type, "data_b64": _b64(a.data)} for a in self.attachments
        ]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Envelope:
        import base64

        data = dict(data)
        data["sender"] = Sender(**data["sender"])
        data["attachments"] = [
            Attachment(a["filename"], a["content_type"], base64.b64decode(a["data_b64"])) for a in data.get("attachments") or []
        ]
        if data.get("published"):
            data["published"] = dt.datetime.fromisoformat(data["published"])
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


@dataclasses.dataclass(slots=True)
class Rejected:
    """An inbound item that must not become a message: kept raw and flagged."""

    reason: str
    flags: list[str]
    bounce_of: str | None = None
    """For a bounce: our transaction id or remote id of the message that bounced."""
    bounced_recipient: str | None = None
    permanent: bool = True
    """For a bounce: a permanent failure (5.x.x) rather than a delay."""
    echo: bool = False
    """Our own message come back: dropped quietly."""


@dataclasses.dataclass(slots=True)
class OutboundAttachment:
    filename: str
    content_type: str
    path: str
    size: int
    url: str | None = None
    """Where the hub serves it (``/media/ID/FILENAME``)."""


@dataclasses.dataclass(slots=True)
class Outbound:
    """One message to send to one remote person."""

    network: str
    txn_id: str
    """Unique per send; networks that can carry a tag carry it, so an echo is
    recognised."""
    to: str
    """The remote id of the recipient."""
    to_name: str | None
    from_username: str
    """The local actor the message appears from (its address on the network)."""
    from_name: str
    """The display name to show: the author, or "Carol via Acme" for a relay."""
    text: str
    html: str
    subject: str | None
    kind: str = "message"
    """``message``, ``correction`` (an edit, degraded), ``withdrawal`` (a
    deletion, degraded), ``edit`` or ``delete`` (where the network can)."""
    reply_token: str | None = None
    references: list[str] = dataclasses.field(default_factory=list)
    """Remote ids of the conversation's earlier messages on this network, oldest first."""
    target_remote_id: str | None = None
    """For ``edit`` and ``delete``: the remote id of the message changed."""
    attachments: list[OutboundAttachment] = dataclasses.field(default_factory=list)
    automatic: bool = False
    """Written by the hub itself (a confirmation code), not by a person."""
    hops: int = 1
    conversation_uri: str | None = None
    message_uri: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outbound:
        data = dict(data)
        data["attachments"] = [OutboundAttachment(**a) for a in data.get("attachments") or []]
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


class SendError(Exception):
    """A send that failed; ``permanent`` ones are not tried again."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after_s: float | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after_s = retry_after_s


class Link(Protocol):
    """How a connector talks to its hub (in process, or over the bridge API)."""

    async def submit(self, raw: bytes, *, sender: str | None, recipients: list[str]) -> str:
        """Store a raw inbound item durably and queue it; returns its id. Only
        once this returns may the network be told the item was accepted."""

    async def report_state(self, state: State, detail: str | None = None) -> None: ...

    async def accepts_recipient(self, username: str) -> bool:
        """Whether a local actor of that name can receive (for address checks)."""


class Connector(abc.ABC):
    """A network's edge. Subclasses set ``kind`` and ``capabilities``."""

    kind: str = ""
    capabilities: Capabilities = Capabilities()

    def __init__(self, name: str, settings: dict[str, Any] | None = None):
        self.name = name
        self.settings = settings or {}
        self._state = State.STOPPED
        self._state_detail: str | None = None
        self.link: Link | None = None

    async def start(self, link: Link) -> None:
        """Begin listening or polling; the default has nothing to start."""
        self.link = link
        await self.set_state(State.CONNECTED)

    async def stop(self) -> None:
        await self.set_state(State.STOPPED)

    @abc.abstractmethod
    async def receive(self, raw: bytes, *, sender: str | None = None, recipients: list[str] | None = None) -> Envelope | Rejected:
        """A raw inbound item as an envelope, or why it is not a message.
        ``sender`` and ``recipients`` are what the edge saw around the item
        (an SMTP envelope's MAIL FROM and RCPT TO)."""

    @abc.abstractmethod
    async def send(self, outbound: Outbound) -> str:
        """Send; the remote id the network gave it. Raises :class:`SendError`."""

    def state(self) -> tuple[State, str | None]:
        return self._state, self._state_detail

    async def set_state(self, state: State, detail: str | None = None) -> None:
        changed = (state, detail) != (self._state, self._state_detail)
        self._state, self._state_detail = state, detail
        if changed and self.link is not None:
            await self.link.report_state(state, detail)

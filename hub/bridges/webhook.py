"""A generic HTTP channel: how SMS, WhatsApp or any provider plugs in.

An actor (an organization, or a customer: the same call) registers a channel
with ``roundtable bridge add NAME --kind webhook --owner USERNAME --url URL``
and gets a secret. Both directions are JSON signed with that secret:

``X-Roundtable-Timestamp: <unix seconds>`` and
``X-Roundtable-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``.

In: the provider (or a small adapter beside it) POSTs to
``/api/roundtable/v1/channels/NAME/inbound``::

    {"id": "SM123",                       # the provider's message id (required)
     "from": {"id": "+4915112345678",      # the sender on that network (required)
              "name": "Carol"},
     "text": "Hello",                     # required unless attachments
     "in_reply_to": "SM122",              # optional: what it answers
     "attachments": [{"filename": "a.jpg", "content_type": "image/jpeg", "data_b64": "..."}],
     "published": "2026-11-23T10:00:00Z"}

Requests older than five minutes, badly signed or malformed are refused
(401, 400) and nothing is stored; an accepted one is stored before the 202.

Out: each message for a person on the channel is POSTed to the channel's
URL, signed the same way::

    {"id": "<transaction id>", "kind": "message", "to": {"id": "+4915112345678", "name": "Carol"},
     "from": {"username": "acme", "name": "Dana via Acme"}, "text": "...", "html": "...",
     "in_reply_to": "SM123", "conversation": "https://hub.example/c/...",
     "attachments": [{"filename": "...", "content_type": "...", "url": "https://hub.example/media/..."}]}

A 2xx answer with ``{"id": "<provider id>"}`` names the message on the
provider's side (without it the transaction id is used); 4xx other than 408
and 429 fail the send for good; anything else is tried again with backoff
(``Retry-After`` is honoured).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Any

from hub.bridges.base import Attachment, Capabilities, Connector, Envelope, Outbound, Rejected, Sender, SendError

if TYPE_CHECKING:
    from hub.context import Hub

MAX_SKEW_S = 300
MAX_TEXT = 20_000


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    return {"Content-Type": "application/json", "X-Roundtable-Timestamp": ts,
            "X-Roundtable-Signature": signature(secret, ts, body)}


def verify(secret: str, headers, body: bytes, *, now: float | None = None) -> str | None:
    """None if the request is signed by ``secret`` and fresh, else why not."""
    ts = headers.get("X-Roundtable-Timestamp", "")
    sig = headers.get("X-Roundtable-Signature", "")
    if not ts or not sig:
        return "missing X-Roundtable-Timestamp or X-Roundtable-Signature"
    if not (ts.isascii() and ts.isdigit()):
        return "X-Roundtable-Timestamp is not a number"
    if abs((now or time.time()) - int(ts)) > MAX_SKEW_S:
        return "the request is too old (or the clocks differ by more than five minutes)"
    if not secret or not hmac.compare_digest(signature(secret, ts, body).encode(), sig.strip().encode("utf-8", "replace")):
        return "bad signature"
    return None


class WebhookConnector(Connector):
    kind = "webhook"

    def __init__(self, hub: Hub, name: str, *, url: str | None, secret: str, owner_username: str | None,
                 capabilities: dict[str, bool] | None = None):
        super().__init__(name)
        self.hub = hub
        self.url = url
        self.secret = secret
        self.owner_username = owner_username
        caps = {"threading": False, "direct_messages": True, "attachments": False}
        caps.update(capabilities or {})
        self.capabilities = Capabilities(**{k: bool(v) for k, v in caps.items() if k in Capabilities.__dataclass_fields__})

    async def receive(self, raw: bytes, *, sender: str | None = None, recipients: list[str] | None = None) -> Envelope | Rejected:
        try:
            data = json.loads(raw)
        except ValueError:
            return Rejected("not JSON", ["malformed"])
        problem = check_inbound(data)
        if problem:
            return Rejected(problem, ["malformed"])
        who = data["from"]
        attachments = []
        import base64
        import binascii

        for a in data.get("attachments") or []:
            try:
                attachments.append(Attachment(str(a.get("filename") or "file")[:200],
                                              str(a.get("content_type") or "application/octet-stream")[:100],
                                              base64.b64decode(a.get("data_b64") or "", validate=True)))
            except (binascii.Error, ValueError, AttributeError):
                return Rejected("an attachment is not valid base64", ["malformed"])
        published = None
        if isinstance(data.get("published"), str):
            try:
                published = dt.datetime.fromisoformat(data["published"].replace("Z", "+00:00"))
                if published.tzinfo is None:
                    published = published.replace(tzinfo=dt.timezone.utc)
            except ValueError:
                published = None
        reply_to = [str(data["in_reply_to"])] if data.get("in_reply_to") else []
        return Envelope(
            network=self.name, remote_id=str(data["id"])[:1000],
            sender=Sender(remote_id=str(who["id"]).strip()[:512], display_name=(who.get("name") or None) and str(who["name"])[:255]),
            text=str(data.get("text") or "")[:MAX_TEXT], recipients=list(recipients or ([self.owner_username] if self.owner_username else [])),
            reply_to=reply_to, attachments=attachments, published=published,
            hops=int(data.get("hops") or 0) if str(data.get("hops") or "0").isdigit() else 0,
            txn_id=str(data["txn"]) if data.get("txn") else None,
        )

    async def send(self, outbound: Outbound) -> str:
        if not self.url:
            raise SendError(f"the {self.name} channel has no URL to send to", permanent=True)
        body = json.dumps(outbound_json(self.hub, outbound)).encode()
        from hub.errors import FetchError

        try:
            resp = await self.hub.http.request("POST", self.url, body=body, headers=signed_headers(self.secret, body),
                                               follow_redirects=False, max_bytes=64 * 1024)
        except FetchError as exc:
            raise SendError(f"cannot reach {self.url}: {exc}", permanent=getattr(exc, "permanent", False)) from None
        if 200 <= resp.status < 300:
            try:
                answer = json.loads(resp.body or b"{}")
                return str(answer.get("id") or outbound.txn_id) if isinstance(answer, dict) else outbound.txn_id
            except ValueError:
                return outbound.txn_id
        retry_after = None
        if resp.headers and resp.headers.get("Retry-After", "").isdigit():
            retry_after = float(resp.headers["Retry-After"])
        permanent = 400 <= resp.status < 500 and resp.status not in (408, 429)
        raise SendError(f"{self.url} answered {resp.status}", permanent=permanent, retry_after_s=retry_after)


def check_inbound(data: Any) -> str | None:
    if not isinstance(data, dict):
        return "the body must be a JSON object"
    if not isinstance(data.get("id"), (str, int)) or not str(data.get("id")).strip():
        return "'id' (the provider's message id) is required"
    who = data.get("from")
    if not isinstance(who, dict) or not isinstance(who.get("id"), (str, int)) or not str(who.get("id")).strip():
        return "'from.id' (the sender on the provider's network) is required"
    if who.get("name") is not None and not isinstance(who.get("name"), str):
        return "'from.name' must be a string"
    if data.get("text") is not None and not isinstance(data.get("text"), str):
        return "'text' must be a string"
    if not data.get("text") and not data.get("attachments"):
        return "'text' or 'attachments' is required"
    if data.get("attachments") is not None and not isinstance(data.get("attachments"), list):
        return "'attachments' must be a list"
    return None


def outbound_json(hub: Hub, out: Outbound) -> dict:
    return {
        "id": out.txn_id, "kind": out.kind, "to": {"id": out.to, "name": out.to_name},
        "from": {"username": out.from_username, "name": out.from_name}, "text": out.text, "html": out.html,
        "subject": out.subject, "in_reply_to": out.target_remote_id or (out.references[-1] if out.references else None),
        "conversation": out.conversation_uri, "message": out.message_uri, "automatic": out.automatic, "hops": out.hops,
        "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size, "url": a.url}
                        for a in out.attachments],
    }

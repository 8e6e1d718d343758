"""Webhooks: an actor's HTTPS endpoints hear about its conversations.

Events (``conversation.created``, ``conversation.status_changed``,
``message.created``) are queued as ``webhook.deliver`` jobs in the same
transaction as the change they report, and delivered with the retry policy
of every job. Each POST carries a JSON body and

* ``X-Roundtable-Event``: the event name;
* ``X-Roundtable-Delivery``: the event id (the same on every retry: receivers
  deduplicate on it);
* ``X-Roundtable-Timestamp``: seconds since the epoch, of this attempt;
* ``X-Roundtable-Signature``: ``sha256=`` and the hex HMAC-SHA256, keyed with
  the webhook's secret, of ``"{timestamp}.{body}"``.

Private notes are never part of an event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time

import sqlalchemy as sa

from hub.context import Hub
from hub.errors import FetchError, NotFound, UsageError
from hub.ids import new_id
from hub.inbox.access import Acting, audit
from hub.jobs import Outcome
from hub.net import status_error
from hub.store import org as org_store
from hub.store.base import Conn, utcnow
from hub.store.jobs import job_row, put_jobs

EVENTS = ("conversation.created", "conversation.status_changed", "message.created")


async def emit(conn: Conn, actor_id: str, event: str, data: dict) -> None:
    """Queue ``event`` for every webhook of ``actor_id`` that listens to it."""
    hooks = [h for h in await org_store.list_webhooks(conn, actor_id) if h.active and (event in h.events or "*" in h.events)]
    if not hooks:
        return
    event_id = new_id()
    rows = [
        job_row("webhook.deliver", {"webhook_id": h.id, "event": event, "event_id": event_id,
                                    "created_at": utcnow().isoformat(), "data": data})
        for h in hooks
    ]
    await put_jobs(conn, rows)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


async def handle_deliver(hub: Hub, job: sa.Row) -> Outcome:
    p = job.payload
    async with hub.db.read() as conn:
        hook = await org_store.get_webhook(conn, p["webhook_id"])
    if hook is None or not hook.active:
        return Outcome("failed", error="the webhook was removed")
    body = json.dumps({"id": p["event_id"], "event": p["event"], "created_at": p["created_at"], "data": p["data"]}).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-Roundtable-Event": p["event"],
        "X-Roundtable-Delivery": p["event_id"],
        "X-Roundtable-Timestamp": str(timestamp),
        "X-Roundtable-Signature": sign(hook.secret, timestamp, body),
    }
    resp = await hub.http.request("POST", hook.url, body=body, headers=headers, follow_redirects=False)
    if 200 <= resp.status < 300:
        return Outcome("done", status=resp.status)
    err: FetchError = status_error(resp, hook.url)
    return Outcome("failed" if err.permanent else "retry", status=resp.status, error=str(err),
                   retry_after_s=err.retry_after_s)


def register(hub: Hub) -> None:
    from hub.inbox import state

    hub.registry.register("webhook.deliver", lambda job: handle_deliver(hub, job))
    hub.registry.every("inbox.wake_snoozed", lambda: state.wake_all_snoozed(hub))


async def create(hub: Hub, acting: Acting, url: str, events: list[str] | None = None) -> dict:
    """Register an endpoint; returns it with its secret (shown only now)."""
    acting.require("admin")
    events = events or list(EVENTS)
    unknown = [e for e in events if e not in EVENTS and e != "*"]
    if unknown:
        raise UsageError(f"unknown events: {', '.join(unknown)} (known: {', '.join(EVENTS)})")
    try:
        hub.http.check_url(url)
    except FetchError as exc:
        raise UsageError(f"webhook URL refused: {exc.safe}") from None
    if not url.startswith("https://") and not hub.cfg.dev:
        raise UsageError("webhook URLs must be https")
    secret = secrets.token_urlsafe(32)
    async with hub.db.write() as conn:
        webhook_id = await org_store.put_webhook(conn, actor_id=acting.actor.id, url=url, secret=secret, events=events)
        await audit(conn, acting, "webhook.create", url=url, events=events)
    return {"id": webhook_id, "url": url, "events": events, "secret": secret}


async def remove(hub: Hub, acting: Acting, webhook_id: str) -> None:
    acting.require("admin")
    async with hub.db.write() as conn:
        if not await org_store.delete_webhook(conn, acting.actor.id, webhook_id):
            raise NotFound(f"no webhook {webhook_id}")
        await audit(conn, acting, "webhook.remove", webhook=webhook_id)


async def list_(hub: Hub, acting: Acting) -> list[dict]:
    acting.require("admin")
    async with hub.db.read() as conn:
        rows = await org_store.list_webhooks(conn, acting.actor.id)
    return [{"id": r.id, "url": r.url, "events": list(r.events), "active": r.active} for r in rows]

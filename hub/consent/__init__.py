"""Consent-based data sharing: a customer's data stays on the customer's hub;
an organization reads it only while a grant the customer made covers it.

A grant names items (``email``, ``address``...), purposes (a fixed
vocabulary), optionally one conversation and an expiry. It travels as an
ActivityPub ``Offer`` addressed to the organization alone, with a capability
(a random token whose SHA-256 alone the customer's hub keeps). The
organization ``Accept``s it (at once for the purposes it declared it accepts,
by default ``support``; otherwise a member decides) or ``Reject``s it; the
customer's ``Undo`` revokes it at once. The organization's hub reads through
``GET /consent/{id}/data?purpose=...``, signed as the organization actor and
presenting the capability; the customer's hub answers with exactly the items
the grant covers for that purpose, and writes each read to the customer's
access log. Every grant, acceptance, rejection, revocation and expiry makes a
consent receipt (fields after Kantara CR 1.1 / ISO/IEC TS 27560), signed by
the customer's hub and kept by both sides.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import secrets

import sqlalchemy as sa

from hub import crypto
from hub.context import Hub
from hub.errors import Forbidden, Gone, NotFound, UsageError
from hub.ids import new_id
from hub.inbox.access import Acting, audit
from hub.store import consent as consent_store
from hub.store.base import utcnow
from hub.store.jobs import job_row, put_jobs

PURPOSES = ("support", "billing", "delivery", "marketing", "research", "product-improvement")
DEFAULT_ACCEPTED = ("support",)
ITEM = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
MAX_VALUE = 2000
CATEGORIES = {"email": "contact", "phone": "contact", "address": "postal address", "postal_address": "postal address",
              "name": "identity", "birthday": "identity"}


def category_of(item: str) -> str:
    if item in CATEGORIES:
        return CATEGORIES[item]
    if item.endswith("_number") or item.endswith("_id"):
        return "identifier"
    if item.startswith("preference"):
        return "preference"
    return "custom"


def check_items(items: list[str]) -> list[str]:
    items = list(dict.fromkeys(i.strip().lower() for i in items if i.strip()))
    if not items:
        raise UsageError("name at least one item (e.g. email, phone, address)")
    bad = [i for i in items if not ITEM.match(i)]
    if bad:
        raise UsageError(f"invalid item name {bad[0]!r}: lower-case letters, digits, '_', '.', '-'")
    return items


def check_purposes(purposes: list[str]) -> list[str]:
    purposes = list(dict.fromkeys(p.strip().lower().replace(" ", "-").replace("_", "-") for p in purposes
                                  if p.strip()))
    if not purposes:
        raise UsageError(f"name a purpose: {', '.join(PURPOSES)}")
    bad = [p for p in purposes if p not in PURPOSES]
    if bad:
        raise UsageError(f"unknown purpose {bad[0]!r}: use {', '.join(PURPOSES)}")
    return purposes


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- the customer's profile ------------------------------------------------------------------------


async def set_item(hub: Hub, acting: Acting, name: str, value: str | None) -> None:
    acting.require("agent")
    (name,) = check_items([name])
    if value is not None and len(value) > MAX_VALUE:
        raise UsageError(f"a value can have at most {MAX_VALUE} characters")
    async with hub.db.write() as conn:
        await consent_store.set_item(conn, acting.actor.id, name, value.strip() if value is not None else None)
        await audit(conn, acting, "profile.set", item=name)


async def profile(hub: Hub, acting: Acting) -> dict[str, str]:
    acting.require("agent")
    async with hub.db.read() as conn:
        return await consent_store.items_of(conn, acting.actor.id)


# --- receipts ----------------------------------------------------------------------------------------


def _canonical(doc: dict) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def make_receipt(hub: Hub, grant: sa.Row, event: str, *, at: dt.datetime | None = None) -> dict:
    """A consent receipt for one event of a grant, signed with the customer's hub's instance key."""
    at = at or utcnow()
    org_name = grant.organization_name or grant.organization_username
    doc = {
        "version": "KI-CR-v1.1.0",
        "jurisdiction": "",
        "consentTimestamp": int(at.timestamp()),
        "collectionMethod": "Roundtable consent grant (ActivityPub Offer from the customer's own hub)",
        "consentReceiptID": f"{grant.uri}/receipts/{event}",
        "language": "en",
        "piiPrincipalId": grant.customer_uri,
        "piiControllers": [{"piiController": org_name, "onBehalf": False, "contact": grant.organization_uri,
                            "url": grant.organization_uri}],
        "policyUrl": grant.organization_uri,
        "services": [{"service": "Roundtable", "purposes": [{
            "purpose": p, "purposeCategory": [p], "consentType": "EXPLICIT",
            "piiCategory": sorted({category_of(i) for i in grant.items}), "primaryPurpose": True,
            "termination": (f"at {grant.expires_at.isoformat()} or on revocation" if grant.expires_at
                            else "on revocation"),
            "thirdPartyDisclosure": False} for p in grant.purposes]}],
        "sensitive": False,
        "spiCat": [],
        # Roundtable's own fields: what happened, to which grant, covering what
        "event": event,
        "eventTimestamp": at.isoformat(),
        "grant": grant.uri,
        "items": list(grant.items),
        "conversation": grant.conversation_uri,
        "expires": grant.expires_at.isoformat() if grant.expires_at else None,
    }
    fed = hub.federation
    key_id = hub.uris.instance_key_id()
    private = hub.keys.private(fed.instance_actor.private_key_pem)
    doc["signature"] = {"type": "RsaSignature", "creator": key_id, "algorithm": "rsa-sha256",
                        "canonicalization": "JSON with sorted keys, no spaces, UTF-8 (the document without signature)",
                        "created": at.isoformat(),
                        "signatureValue": base64.b64encode(crypto.sign(private, _canonical(doc))).decode()}
    return doc


def verify_receipt(doc: dict, public_pem: str) -> bool:
    body = {k: v for k, v in doc.items() if k != "signature"}
    sig = (doc.get("signature") or {}).get("signatureValue")
    if not isinstance(sig, str):
        return False
    try:
        return crypto.verify(crypto.load_public_pem(public_pem), base64.b64decode(sig), _canonical(body))
    except (ValueError, TypeError):
        return False


async def _receipt(conn, hub: Hub, grant_id: str, event: str) -> dict:
    """Make, keep and (to a remote organization) send the receipt of an event."""
    grant = await consent_store.get_grant(conn, grant_id)
    doc = make_receipt(hub, grant, event)
    await consent_store.put_receipt(conn, grant.id, event, doc)
    if grant.organization_local:  # both sides on this hub: the organization's copy, and its state, at once
        other = await consent_store.get_grant_by_uri(conn, grant.uri, "organization")
        if other is not None:
            await consent_store.put_receipt(conn, other.id, event, doc)
            if event in ("revoked", "expired"):
                await consent_store.set_state(conn, other.id, event, from_states=("offered", "accepted"))
    elif event != "granted":  # the granted receipt travels inside the Offer
        await put_jobs(conn, [job_row("outbox.publish", {"verb": "consent_receipt", "grant_id": grant.id,
                                                         "event": event, "activity_id": new_id()})])
    return doc


# --- the customer's side -----------------------------------------------------------------------------


def _parse_expiry(value: str | dt.datetime | None) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(
                f"invalid expiry {value!r}: use a date (2027-01-31) or a time (2027-01-31T12:00Z)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    if value <= utcnow():
        raise UsageError("the expiry is in the past")
    return value


async def grant(hub: Hub, acting: Acting, organization: sa.Row, *, items: list[str], purposes: list[str],
                conversation_uri: str | None = None, expires: str | dt.datetime | None = None) -> dict:
    """The customer grants ``organization`` items for purposes; returns the grant."""
    acting.require("agent")
    items, purposes = check_items(items), check_purposes(purposes)
    expires_at = _parse_expiry(expires)
    if organization.id == acting.actor.id:
        raise UsageError("a grant is to someone else")
    if organization.type == "Application" or organization.bridge_network:
        raise UsageError("grants go to an organization (or person) on the fediverse")
    if conversation_uri:
        from hub.store import conversations as conv_store

        async with hub.db.read() as conn:
            conversation = await conv_store.get_conversation_by_any_uri(conn, conversation_uri)
            if conversation is None or not await conv_store.is_participant(conn, conversation.id, acting.actor.id):
                raise NotFound(f"no conversation {conversation_uri} of yours")
            conversation_uri = conversation.uri
    capability = secrets.token_urlsafe(32)
    grant_id = new_id()
    uri = f"{hub.cfg.base_url}/consent/{grant_id}"
    offer_id = new_id()
    from hub import sealing

    async with hub.db.write() as conn:
        await consent_store.put_grant(conn, {
            "id": grant_id, "uri": uri, "side": "customer", "customer_id": acting.actor.id,
            "organization_id": organization.id, "items": items, "purposes": purposes,
            "conversation_uri": conversation_uri, "expires_at": expires_at, "state": "offered",
            "offer_uri": hub.uris.activity(offer_id), "capability_hash": digest(capability),
            "data_url": f"{uri}/data"})
        await audit(conn, acting, "consent.grant", organization=organization.uri, items=items, purposes=purposes)
        await _receipt(conn, hub, grant_id, "granted")
        if not organization.local:
            await put_jobs(conn, [job_row("outbox.publish", {
                "verb": "consent_offer", "grant_id": grant_id, "activity_id": offer_id,
                "sealed_capability": sealing.seal(hub.cfg, capability)})])
        row = await consent_store.get_grant(conn, grant_id)
    if organization.local:  # both on this hub: the organization's side is written here, no network
        from hub.consent import federation as consent_fed

        await consent_fed.receive_offer(hub, row, capability, receipt=None)
    hub.wake()
    return grant_json(row)


async def revoke(hub: Hub, acting: Acting, organization: sa.Row) -> list[dict]:
    """End every live grant of the customer to ``organization``, at once."""
    acting.require("agent")
    async with hub.db.write() as conn:
        rows = await consent_store.list_grants(conn, side="customer", customer_id=acting.actor.id,
                                               organization_id=organization.id, states=("offered", "accepted"))
        ended = []
        for row in rows:
            if await consent_store.set_state(conn, row.id, "revoked", from_states=("offered", "accepted")):
                ended.append(row.id)
                await _receipt(conn, hub, row.id, "revoked")
                if not row.organization_local:
                    await put_jobs(conn, [job_row("outbox.publish", {"verb": "consent_undo", "grant_id": row.id,
                                                                     "activity_id": new_id()})])
        if not ended:
            raise NotFound(f"no live grant to {organization.uri}")
        await audit(conn, acting, "consent.revoke", organization=organization.uri, grants=ended)
        out = [grant_json(await consent_store.get_grant(conn, i)) for i in ended]
    hub.wake()
    return out


async def expire_due(hub: Hub) -> int:
    """Grants whose time is up end, each with its receipt (the job runner calls this periodically)."""
    async with hub.db.write() as conn:
        n = 0
        for row in await consent_store.due_to_expire(conn, utcnow()):
            if await consent_store.set_state(conn, row.id, "expired", from_states=("offered", "accepted")):
                n += 1
                await _receipt(conn, hub, row.id, "expired")
    if n:
        hub.wake()
    return n


def live(row: sa.Row, now: dt.datetime | None = None) -> bool:
    now = now or utcnow()
    return row.state == "accepted" and (row.expires_at is None or row.expires_at > now)


async def serve_read(hub: Hub, grant_id: str, *, reader_uri: str, capability: str, purpose: str,
                     conversation: str | None = None) -> dict[str, str]:
    """The customer's hub answers a read: exactly the items the grant covers for the purpose, logged.
    A grant for one conversation answers only a read that names that conversation."""
    async with hub.db.write() as conn:
        row = await consent_store.get_grant(conn, grant_id)
        if row is None or row.side != "customer":
            raise NotFound("no such grant")
        if row.organization_uri != reader_uri:
            raise Forbidden("this grant is for another organization")
        if not row.capability_hash or not secrets.compare_digest(row.capability_hash, digest(capability)):
            raise Forbidden("the capability does not match this grant")
        if row.expires_at is not None and row.expires_at <= utcnow() and row.state in ("offered", "accepted"):
            await consent_store.set_state(conn, row.id, "expired", from_states=("offered", "accepted"))
            await _receipt(conn, hub, row.id, "expired")
            raise Gone("the grant has expired")
        if row.state in ("revoked", "expired", "rejected"):
            raise Gone(f"the grant was {row.state}")
        if row.state != "accepted":
            raise Forbidden("the grant has not been accepted")
        if purpose not in row.purposes:
            raise Forbidden(f"the grant does not cover the purpose {purpose!r}")
        if row.conversation_uri and conversation != row.conversation_uri:
            from hub.store import conversations as conv_store

            named = await conv_store.get_conversation_by_any_uri(conn, conversation) if conversation else None
            granted = await conv_store.get_conversation_by_any_uri(conn, row.conversation_uri)
            if named is None or granted is None or named.id != granted.id:
                raise Forbidden("this grant covers one conversation only: name it (conversation=URI)")
        held = await consent_store.items_of(conn, row.customer_id)
        data = {name: held[name] for name in row.items if name in held}
        await consent_store.put_read(conn, grant_id=row.id, customer_id=row.customer_id, reader_uri=reader_uri,
                                     purpose=purpose, items=sorted(data))
    return data


async def access_log(hub: Hub, acting: Acting, *, limit: int = 500) -> list[dict]:
    acting.require("agent")
    async with hub.db.read() as conn:
        rows = await consent_store.reads_of(conn, acting.actor.id, limit=limit)
    out = []
    for r in rows:
        who = (r.reader_name or (f"{r.reader_username}@{r.reader_domain}" if r.reader_domain else r.reader_username)
               or r.reader_uri)
        items = ", ".join(r.items) if r.items else "nothing"
        out.append({"at": r.created_at.isoformat(), "reader": r.reader_uri, "reader_name": who, "purpose": r.purpose,
                    "items": list(r.items), "grant_id": r.grant_id,
                    "text": f"{who} read your {items} for {r.purpose} on {r.created_at:%Y-%m-%d %H:%M} UTC"})
    return out


# --- the organization's side -------------------------------------------------------------------------


async def pending(hub: Hub, acting: Acting) -> list[dict]:
    acting.require("agent")
    async with hub.db.read() as conn:
        rows = await consent_store.list_grants(conn, side="organization", organization_id=acting.actor.id,
                                               states=("offered",))
    return [grant_json(r) for r in rows]


async def decide(hub: Hub, acting: Acting, offer_uri: str, *, accept: bool) -> dict:
    """A member accepts or rejects an offer the organization's declared purposes did not cover."""
    acting.require("admin")
    async with hub.db.write() as conn:
        row = (await consent_store.get_grant_by_offer(conn, offer_uri, "organization")
               or await consent_store.get_grant_by_uri(conn, offer_uri, "organization"))
        if row is None or row.organization_id != acting.actor.id:
            raise NotFound(f"no offer {offer_uri} to @{acting.actor.username}")
        state = "accepted" if accept else "rejected"
        if not await consent_store.set_state(conn, row.id, state, from_states=("offered",),
                                             decided_by_id=acting.account_id):
            raise UsageError(f"this offer was {row.state} already")
        await audit(conn, acting, "consent.accept" if accept else "consent.reject", grant=row.uri)
        if not row.customer_local:
            await put_jobs(conn, [job_row("outbox.publish", {"verb": "consent_answer", "grant_id": row.id,
                                                             "accept": accept, "activity_id": new_id()})])
        row = await consent_store.get_grant(conn, row.id)
    if row.customer_local:
        from hub.consent import federation as consent_fed

        await consent_fed.receive_answer(hub, row.uri, accept=accept)
    hub.wake()
    return grant_json(row)


async def read(hub: Hub, acting: Acting, customer: sa.Row | None, purpose: str,
               conversation_uri: str | None = None) -> dict[str, str]:
    """What the organization may read of ``customer`` for ``purpose`` now: ``{item: value}``, ``{}`` when
    nothing is granted. Each live grant is read from the customer's hub (nothing is cached here)."""
    acting.require("admin")
    (purpose,) = check_purposes([purpose])
    if customer is None:  # no such customer (any more): nothing to read
        return {}
    async with hub.db.read() as conn:
        rows = await consent_store.list_grants(conn, side="organization", organization_id=acting.actor.id,
                                               customer_id=customer.id, states=("accepted",))
    out: dict[str, str] = {}
    for row in rows:
        if not live(row) or purpose not in row.purposes:
            continue
        if row.conversation_uri and row.conversation_uri != conversation_uri:
            continue  # a grant for one conversation counts only for reads about that conversation
        from hub.consent import federation as consent_fed

        out.update(await consent_fed.fetch_data(hub, row, purpose))
    async with hub.db.write() as conn:
        await audit(conn, acting, "consent.read", customer=customer.uri, purpose=purpose, items=sorted(out))
    return out


async def customer_for(hub: Hub, handle: str) -> sa.Row | None:
    """The customer a read names (handle or URI), or None when there is none any more (deleted, gone):
    reading about nobody reads nothing."""
    from hub.errors import HubError
    from hub.store import actors as actor_store

    try:
        row = await hub.resolve_handle(handle)
    except HubError as exc:
        gone = exc.status in (404, 410) or getattr(exc, "status_code", None) in (404, 410)
        if not gone:
            raise  # a network that is down for now is not "nothing granted"
        row = None
    if row is None or row.deleted_at is not None:
        return None
    async with hub.db.read() as conn:
        fresh = await actor_store.get_actor_by_id(conn, row.id)
    return fresh if fresh is not None and fresh.deleted_at is None else None


async def grants(hub: Hub, acting: Acting) -> list[dict]:
    """Every grant the actor made (as a customer) or received (as an organization), with receipts."""
    acting.require("agent")
    async with hub.db.read() as conn:
        rows = (await consent_store.list_grants(conn, side="customer", customer_id=acting.actor.id)
                + await consent_store.list_grants(conn, side="organization", organization_id=acting.actor.id))
        receipts = await consent_store.receipts_of(conn, [r.id for r in rows])
    by_grant: dict[str, list] = {}
    for rc in receipts:
        by_grant.setdefault(rc.grant_id, []).append({"id": rc.id, "event": rc.event, "receipt": rc.document})
    return [{**grant_json(r), "receipts": by_grant.get(r.id, [])} for r in rows]


def grant_json(row: sa.Row) -> dict:
    def handle(username, domain, local):
        return username if local else f"{username}@{domain}"

    return {
        "id": row.id, "uri": row.uri, "side": row.side, "state": row.state, "offer": row.offer_uri,
        "customer": row.customer_uri, "customer_handle": handle(row.customer_username, row.customer_domain,
                                                                 row.customer_local),
        "organization": row.organization_uri,
        "organization_handle": handle(row.organization_username, row.organization_domain, row.organization_local),
        "items": list(row.items), "purposes": list(row.purposes), "conversation": row.conversation_uri,
        "expires": row.expires_at.isoformat() if row.expires_at else None,
        "created": row.created_at.isoformat(), "decided": row.decided_at.isoformat() if row.decided_at else None,
        "ended": row.ended_at.isoformat() if row.ended_at else None,
    }


def register(hub: Hub) -> None:
    hub.registry.every("consent.expire", lambda: expire_due(hub))

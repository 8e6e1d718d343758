"""Consent over ActivityPub: ``Offer`` of a grant (customer → organization,
addressed to it alone), ``Accept``/``Reject`` (organization → customer),
``Undo`` of the ``Offer`` (the customer revokes), ``Create`` of a
``ConsentReceipt`` (each receipt, so both sides keep it), and the signed read
``GET /consent/{id}/data?purpose=...`` that presents the capability in
``Authorization: Capability <token>``.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from aiohttp import web

from hub import consent, sealing
from hub.errors import BadRequest, FetchError, HubError
from hub.federation import documents as docs
from hub.federation import render
from hub.jobs import DONE, Outcome
from hub.store import actors as actor_store
from hub.store import consent as consent_store
from hub.store.jobs import job_row, put_jobs

log = logging.getLogger(__name__)
NS = "https://roundtable.social/ns#"
CONTEXT = ["https://www.w3.org/ns/activitystreams", {
    "rt": NS, "ConsentGrant": "rt:ConsentGrant", "ConsentReceipt": "rt:ConsentReceipt", "items": "rt:items",
    "purposes": "rt:purposes", "capability": "rt:capability", "receipt": "rt:receipt",
    "dataEndpoint": {"@id": "rt:dataEndpoint", "@type": "@id"}}]


def _ignored(reason: str) -> Outcome:
    return Outcome("done", error=f"ignored: {reason}")


# --- publishing (outbox.publish verbs) ---------------------------------------------------------------


async def _grant_and_parties(fed, grant_id: str):
    async with fed.hub.db.read() as conn:
        row = await consent_store.get_grant(conn, grant_id)
        customer = await actor_store.get_actor_by_id(conn, row.customer_id)
        org = await actor_store.get_actor_by_id(conn, row.organization_id)
    return row, customer, org


def grant_object(row: sa.Row, capability: str | None = None) -> dict:
    obj = {"id": row.uri, "type": "ConsentGrant", "attributedTo": row.customer_uri, "audience": row.organization_uri,
           "items": list(row.items), "purposes": list(row.purposes), "dataEndpoint": row.data_url}
    if row.conversation_uri:
        obj["context"] = row.conversation_uri
    if row.expires_at:
        obj["endTime"] = render.iso(row.expires_at)
    if capability:
        obj["capability"] = capability
    return obj


async def publish_offer(fed, p: dict) -> None:
    from hub.federation.publish import store_and_deliver

    row, customer, org = await _grant_and_parties(fed, p["grant_id"])
    capability = sealing.unseal(fed.hub.cfg, p["sealed_capability"])
    if capability is None:
        raise HubError("the capability was sealed under another secret key")
    obj = grant_object(row, capability)
    async with fed.hub.db.read() as conn:
        granted = [r for r in await consent_store.receipts_of(conn, [row.id]) if r.event == "granted"]
    if granted:
        obj["receipt"] = granted[0].document  # the first receipt travels with the grant
    doc = render.activity("Offer", id="", actor=customer.uri, object=obj, to=[org.uri],
                          context=CONTEXT, target=org.uri)
    async with fed.hub.db.write() as conn:
        await store_and_deliver(fed, conn, activity_id=p["activity_id"], doc=doc, signer=customer,
                                inboxes=[org.inbox_uri], object_uri=row.uri)


async def publish_answer(fed, p: dict) -> None:
    from hub.federation.publish import store_and_deliver

    row, customer, org = await _grant_and_parties(fed, p["grant_id"])
    doc = render.activity("Accept" if p["accept"] else "Reject", id="", actor=org.uri, object=row.offer_uri,
                          to=[customer.uri], context=CONTEXT)
    async with fed.hub.db.write() as conn:
        await store_and_deliver(fed, conn, activity_id=p["activity_id"], doc=doc, signer=org,
                                inboxes=[customer.inbox_uri], object_uri=row.offer_uri)


async def publish_undo(fed, p: dict) -> None:
    from hub.federation.publish import store_and_deliver

    row, customer, org = await _grant_and_parties(fed, p["grant_id"])
    offer = {"id": row.offer_uri, "type": "Offer", "actor": customer.uri, "object": row.uri}
    doc = render.activity("Undo", id="", actor=customer.uri, object=offer, to=[org.uri], context=CONTEXT)
    async with fed.hub.db.write() as conn:
        await store_and_deliver(fed, conn, activity_id=p["activity_id"], doc=doc, signer=customer,
                                inboxes=[org.inbox_uri], object_uri=row.offer_uri)


async def publish_receipt(fed, p: dict) -> None:
    from hub.federation.publish import store_and_deliver

    row, customer, org = await _grant_and_parties(fed, p["grant_id"])
    async with fed.hub.db.read() as conn:
        receipts = [r for r in await consent_store.receipts_of(conn, [row.id]) if r.event == p["event"]]
    if not receipts:
        return
    receipt = receipts[-1].document
    obj = {"id": receipt["consentReceiptID"], "type": "ConsentReceipt", "attributedTo": customer.uri,
           "inReplyTo": row.uri, "receipt": receipt}
    doc = render.activity("Create", id="", actor=customer.uri, object=obj, to=[org.uri], context=CONTEXT)
    async with fed.hub.db.write() as conn:
        await store_and_deliver(fed, conn, activity_id=p["activity_id"], doc=doc, signer=customer,
                                inboxes=[org.inbox_uri], object_uri=obj["id"])


VERBS = {"consent_offer": publish_offer, "consent_answer": publish_answer, "consent_undo": publish_undo,
         "consent_receipt": publish_receipt}


# --- the organization's hub receives -----------------------------------------------------------------


async def receive_offer(hub, customer_side: sa.Row | None, capability: str, *, receipt: dict | None,
                        values: dict | None = None) -> str | None:
    """Keep an offered grant on the organization's side; accept it at once when the organization declared
    it accepts all its purposes. ``customer_side`` is the customer's row when both are on this hub."""
    if customer_side is not None:
        values = {"uri": customer_side.uri, "customer_id": customer_side.customer_id,
                  "organization_id": customer_side.organization_id, "items": list(customer_side.items),
                  "purposes": list(customer_side.purposes), "conversation_uri": customer_side.conversation_uri,
                  "expires_at": customer_side.expires_at, "offer_uri": customer_side.offer_uri,
                  "data_url": customer_side.data_url}
    async with hub.db.write() as conn:
        if await consent_store.get_grant_by_uri(conn, values["uri"], "organization") is not None:
            return None
        org = await actor_store.get_actor_by_id(conn, values["organization_id"])
        declared = (org.settings or {}).get("consent_purposes")
        accepted = list(consent.DEFAULT_ACCEPTED) if declared is None else declared
        auto = set(values["purposes"]) <= set(accepted)
        grant_id = await consent_store.put_grant(conn, {
            **values, "side": "organization", "state": "offered",
            "sealed_capability": sealing.seal(hub.cfg, capability)})
        if receipt is not None:
            await consent_store.put_receipt(conn, grant_id, "granted", receipt)
        elif customer_side is not None:
            for rc in await consent_store.receipts_of(conn, [customer_side.id]):
                await consent_store.put_receipt(conn, grant_id, rc.event, rc.document)
        if auto:
            await consent_store.set_state(conn, grant_id, "accepted", from_states=("offered",))
            if customer_side is None:
                from hub.ids import new_id

                await put_jobs(conn, [job_row("outbox.publish", {"verb": "consent_answer", "grant_id": grant_id,
                                                                 "accept": True, "activity_id": new_id()})])
    if auto and customer_side is not None:
        await receive_answer(hub, customer_side.uri, accept=True)
    hub.wake()
    return grant_id


async def receive_answer(hub, grant_uri: str, *, accept: bool, answerer_id: str | None = None) -> bool:
    """The customer's hub hears the organization's answer: the grant is accepted (or rejected), with a receipt."""
    async with hub.db.write() as conn:
        row = await consent_store.get_grant_by_uri(conn, grant_uri, "customer")
        if row is None or (answerer_id is not None and row.organization_id != answerer_id):
            return False
        state = "accepted" if accept else "rejected"
        if not await consent_store.set_state(conn, row.id, state, from_states=("offered",)):
            return False
        doc = await consent._receipt(conn, hub, row.id, state)
        if row.organization_local:
            other = await consent_store.get_grant_by_uri(conn, grant_uri, "organization")
            if other is not None:
                await consent_store.put_receipt(conn, other.id, state, doc)
    hub.wake()
    return True


async def handle_offer(fed, doc: dict, actor: sa.Row, _inbox: str | None) -> Outcome:
    obj = doc.get("object")
    if not isinstance(obj, dict) or "ConsentGrant" not in docs.types_of(obj):
        return _ignored("Offer of something other than a consent grant")
    hub = fed.hub
    uri, data_url = docs.id_of(obj), obj.get("dataEndpoint")
    if not uri or not isinstance(data_url, str) or docs.id_of(obj.get("attributedTo")) != actor.uri:
        raise BadRequest("a consent grant names itself, its customer and where to read")
    if not docs.same_origin(uri, actor.uri) or not docs.same_origin(data_url, actor.uri):
        raise BadRequest("a consent grant lives on its customer's hub")
    capability = obj.get("capability")
    if not isinstance(capability, str) or not 20 <= len(capability) <= 200:
        raise BadRequest("a consent grant carries a capability")
    target = docs.id_of(obj.get("audience")) or docs.id_of(doc.get("target"))
    async with hub.db.read() as conn:
        org = await actor_store.get_actor_by_uri(conn, target or "")
    if org is None or not org.local or org.type == "Application":
        return _ignored("a consent grant for no one here")
    try:
        items = consent.check_items([str(i) for i in obj.get("items") or []])
        purposes = consent.check_purposes([str(p) for p in obj.get("purposes") or []])
    except HubError as exc:
        raise BadRequest(exc.safe) from None
    expires = docs.parse_time(obj.get("endTime")) if obj.get("endTime") else None
    conversation_uri = docs.id_of(obj.get("context"))
    receipt = obj.get("receipt") if isinstance(obj.get("receipt"), dict) else None
    if receipt is not None and not (isinstance(receipt.get("consentReceiptID"), str)
                                    and docs.same_origin(receipt["consentReceiptID"], actor.uri)):
        raise BadRequest("a consent receipt comes from the customer's hub")
    await receive_offer(hub, None, capability, receipt=receipt, values={
        "uri": uri, "customer_id": actor.id, "organization_id": org.id, "items": items, "purposes": purposes,
        "conversation_uri": conversation_uri, "expires_at": expires, "offer_uri": docs.id_of(doc),
        "data_url": data_url})
    return DONE


async def answer_from(fed, doc: dict, actor: sa.Row, *, accept: bool) -> Outcome | None:
    """An ``Accept``/``Reject`` of one of our customers' offers (None: not about consent)."""
    offer_uri = docs.id_of(doc.get("object"))
    if not offer_uri:
        return None
    async with fed.hub.db.read() as conn:
        row = await consent_store.get_grant_by_offer(conn, offer_uri, "customer")
    if row is None:
        return None
    if row.organization_id != actor.id:
        raise BadRequest("only the organization the grant was offered to answers it")
    await receive_answer(fed.hub, row.uri, accept=accept, answerer_id=actor.id)
    return DONE


async def undo_from(fed, doc: dict, actor: sa.Row) -> Outcome | None:
    obj = doc.get("object")
    offer_uri = docs.id_of(obj)
    grant_uri = docs.id_of(obj.get("object")) if isinstance(obj, dict) else None
    async with fed.hub.db.write() as conn:
        row = (await consent_store.get_grant_by_offer(conn, offer_uri or "", "organization")
               or await consent_store.get_grant_by_uri(conn, grant_uri or "", "organization"))
        if row is None:
            return None
        if row.customer_id != actor.id:
            raise BadRequest("only the customer revokes a grant")
        await consent_store.set_state(conn, row.id, "revoked", from_states=("offered", "accepted"))
    return DONE


async def receipt_from(fed, obj: dict, actor: sa.Row) -> Outcome:
    receipt = obj.get("receipt")
    grant_uri = docs.id_of(obj.get("inReplyTo"))
    if not isinstance(receipt, dict) or not isinstance(receipt.get("consentReceiptID"), str):
        raise BadRequest("a consent receipt without its document")
    async with fed.hub.db.write() as conn:
        row = await consent_store.get_grant_by_uri(conn, grant_uri or "", "organization")
        if row is None:
            return _ignored("a receipt of no grant here")
        if row.customer_id != actor.id or not docs.same_origin(receipt["consentReceiptID"], actor.uri):
            raise BadRequest("a receipt comes from the customer's hub")
        event = str(receipt.get("event") or "")
        if event not in ("granted", "accepted", "rejected", "revoked", "expired"):
            raise BadRequest("a receipt names its event")
        await consent_store.put_receipt(conn, row.id, event, receipt)
        if event in ("revoked", "expired"):  # what the customer's hub decided holds here too
            await consent_store.set_state(conn, row.id, event, from_states=("offered", "accepted"))
    return DONE


# --- reading -----------------------------------------------------------------------------------------


async def fetch_data(hub, row: sa.Row, purpose: str) -> dict[str, str]:
    """Read one grant's data from the customer's hub, signed as the organization, with its capability."""
    capability = sealing.unseal(hub.cfg, row.sealed_capability) if row.sealed_capability else None
    if capability is None:
        return {}
    if row.customer_local:
        async with hub.db.read() as conn:
            customer_side = await consent_store.get_grant_by_uri(conn, row.uri, "customer")
        try:
            return await consent.serve_read(hub, customer_side.id, reader_uri=row.organization_uri,
                                            capability=capability, purpose=purpose,
                                            conversation=row.conversation_uri)
        except HubError as exc:
            if exc.status == 410:
                await _ended(hub, row)
            return {}
    from urllib.parse import urlencode

    from hub.actors import signing_key

    async with hub.db.read() as conn:
        org = await actor_store.get_actor_by_id(conn, row.organization_id)
    key_id, private = signing_key(hub, org)
    query = {"purpose": purpose, **({"conversation": row.conversation_uri} if row.conversation_uri else {})}
    url = f"{row.data_url}?{urlencode(query)}"
    try:
        resp = await hub.http.request("GET", url, headers={"Accept": "application/json",
                                                            "Authorization": f"Capability {capability}"},
                                      signer=hub.federation.signer(key_id, private), follow_redirects=False)
    except FetchError as exc:
        log.warning("cannot read grant %s: %s", row.uri, exc)
        raise
    if resp.status == 410:
        await _ended(hub, row)
        return {}
    if resp.status != 200:
        log.info("grant %s read refused: %s", row.uri, resp.status)
        return {}
    data = resp.json()
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, dict):
        return {}
    return {k: v for k, v in items.items() if k in row.items and isinstance(v, str)}


async def _ended(hub, row: sa.Row) -> None:
    async with hub.db.write() as conn:
        await consent_store.set_state(conn, row.id, "revoked", from_states=("offered", "accepted"))


async def serve_data(request: web.Request) -> web.Response:
    """``GET /consent/{id}/data?purpose=P[&conversation=URI]``: signed by the organization actor, with the
    capability (a grant for one conversation answers only when the read names it)."""
    from hub.federation.inbox import verify_request
    from hub.web import HUB_KEY

    hub = request.app[HUB_KEY]
    fed = hub.federation
    scheme, _, capability = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "capability" or not capability.strip():
        return web.json_response({"error": "present the grant's capability: Authorization: Capability <token>"},
                                 status=401)
    try:
        _parsed, key = await verify_request(fed, request, None)
        data = await consent.serve_read(hub, request.match_info["id"], reader_uri=key.owner_uri,
                                        capability=capability.strip(), purpose=request.query.get("purpose", ""),
                                        conversation=request.query.get("conversation") or None)
    except HubError as exc:
        return web.json_response({"error": exc.safe}, status=exc.status)
    return web.json_response({"grant": f"{hub.cfg.base_url}/consent/{request.match_info['id']}", "items": data},
                             headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    app.router.add_get("/consent/{id}/data", serve_data)

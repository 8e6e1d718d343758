"""The Roundtable JSON API, ``/api/roundtable/v1/``: the inbox for programs.

Authenticated with bearer tokens (``roundtable token create``), stored
hashed. A token belongs to a login; the login acts for the actors it is a
member of, with its role there, exactly as on the command line. Every path
answers with or without a trailing slash. The OpenAPI document is served at
``/api/roundtable/v1/openapi.json`` (``hub/openapi.py``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re

from aiohttp import web

from hub import notify
from hub.context import Hub
from hub.errors import Forbidden, HubError, NotFound, Unauthorized, UsageError
from hub.inbox import access, conversations, state, webhooks
from hub.store import org as org_store

log = logging.getLogger(__name__)
BASE = "/api/roundtable/v1"
HUB_KEY = web.AppKey("api_hub", Hub)
MAX_BODY = 64 * 1024


def error(status: int, message: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="roundtable"'} if status == 401 else None
    return web.json_response({"error": message}, status=status, headers=headers)


async def _account(request: web.Request, hub: Hub):
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("a bearer token is required")
    digest = hashlib.sha256(token.strip().encode()).hexdigest()
    async with hub.db.write() as conn:
        account = await org_store.get_account_by_token_hash(conn, digest)
        if account is None:
            return await _oauth_account(request, hub, digest)
        await org_store.touch_token(conn, account.token_id)
    return account


OAUTH_KEY = web.RequestKey("api_oauth", object)
# where an app's OAuth token is taken: an actor's consent endpoints and its profile, nothing else
_OAUTH_PATHS = re.compile(rf"^{re.escape(BASE)}/actors/[^/]+/(consent/[^/]+(/[^/]+)?|profile)/?$")
CONSENT_SCOPES = {"GET": "read:consent", "POST": "write:consent", "PUT": "write:consent"}


async def _oauth_account(request: web.Request, hub: Hub, digest: str):
    """An OAuth token (from an app authorized at /oauth/authorize) on the consent endpoints only: it needs the
    explicit ``read:consent`` / ``write:consent`` scope and acts for the actor it was issued for."""
    from hub.mastodon.core import grants, holder_of
    from hub.store import mastodon as client_store

    if not _OAUTH_PATHS.match(request.path):
        raise Unauthorized("invalid token")
    async with hub.db.read() as conn:
        row = await client_store.get_token(conn, digest)
        holder = await holder_of(conn, row) if row is not None else None
    if holder is None:
        raise Unauthorized("invalid token")
    account, actor, _membership = holder
    needed = CONSENT_SCOPES.get(request.method, "write:consent")
    if not grants(row.scopes.split(), needed):
        raise Forbidden(f"this token lacks the {needed} scope")
    if request.match_info.get("actor", "").lower() != actor.username:
        raise Forbidden(f"this token acts for @{actor.username} only")
    request[OAUTH_KEY] = row
    return account


async def _body(request: web.Request) -> dict:
    if request.content_length and request.content_length > MAX_BODY:
        raise HubError("request body too large", status=413)
    raw = await request.read()
    if len(raw) > MAX_BODY:
        raise HubError("request body too large", status=413)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise UsageError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise UsageError("the body must be a JSON object")
    return data


def _str(data: dict, key: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise UsageError(f"{key!r} is required")
        return None
    if not isinstance(value, str):
        raise UsageError(f"{key!r} must be a string")
    return value


def _str_list(data: dict, key: str) -> list[str]:
    value = data.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{key!r} must be a list of strings")
    return value


def endpoint(handler):
    """Authenticate, find the acting membership, turn errors into JSON."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        hub = request.app[HUB_KEY]
        try:
            account = await _account(request, hub)
            acting = None
            if "actor" in request.match_info:
                acting = await access.acting_for_account(hub, account, request.match_info["actor"])
            return await handler(request, hub, account, acting)
        except HubError as exc:
            if exc.status >= 500:
                log.exception("API error on %s", request.path)
            return error(exc.status, exc.safe)

    return wrapped


async def _conversation_for(hub: Hub, acting, conversation_id: str):
    conversation = await conversations.get_conversation(hub, conversation_id)
    async with hub.db.read() as conn:
        await conversations.require_participant(conn, acting, conversation)
    return conversation


# --- handlers ----------------------------------------------------------------------------------


async def me(request, hub, account, _acting):
    async with hub.db.read() as conn:
        actors = await org_store.list_actors_of_account(conn, account.id)
    return web.json_response({
        "username": account.username,
        "actors": [{"username": a.username, "type": a.type, "uri": a.uri, "role": a.role} for a in actors],
    })


async def list_conversations(request, hub, _account, acting):
    q = request.query
    participant = None
    if q.get("participant"):
        participant = await hub.resolve_handle(q["participant"])
    try:
        limit = int(q.get("limit", "20"))
    except ValueError:
        raise UsageError("limit must be a number") from None
    items, cursor = await state.list_conversations(
        hub, acting, status=q.get("status") or None, assignee=q.get("assignee") or None, label=q.get("label") or None,
        participant=participant, network=q.get("network") or None, query=q.get("q") or None,
        cursor=q.get("cursor") or None, limit=limit,
    )
    return web.json_response({"items": items, "next_cursor": cursor})


async def start_conversation(request, hub, _account, acting):
    data = await _body(request)
    handles = _str_list(data, "to")
    if not handles:
        raise UsageError("'to' needs at least one handle or actor URI")
    text, subject = _str(data, "text", required=True), _str(data, "subject")
    targets = [await hub.resolve_handle(h) for h in handles]
    conversation, message = await conversations.start(hub, acting, targets, text, subject=subject)
    view = await state.show(hub, acting, conversation, mark_read=False)
    return web.json_response({"conversation": view["conversation"], "message": message.uri}, status=201)


async def show_conversation(request, hub, _account, acting):
    conversation = await _conversation_for(hub, acting, request.match_info["conversation"])
    return web.json_response(await state.show(hub, acting, conversation))


def _time(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"invalid time {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


async def update_conversation(request, hub, _account, acting):
    conversation = await _conversation_for(hub, acting, request.match_info["conversation"])
    data = await _body(request)
    priority = data.get("priority")
    if priority is not None and not isinstance(priority, int):
        raise UsageError("'priority' must be a number")
    assignee = data.get("assignee", ...)
    if assignee is not ... and assignee is not None and not isinstance(assignee, str):
        raise UsageError("'assignee' must be a username or null")
    item = await state.update(
        hub, acting, conversation, status=_str(data, "status"), snooze_until=_time(_str(data, "snooze_until")),
        assign=None if assignee is ... else (assignee or ""), team=_str(data, "team"), priority=priority,
        add_labels=_str_list(data, "add_labels"), remove_labels=_str_list(data, "remove_labels"),
    )
    return web.json_response(item)


async def post_message(request, hub, _account, acting):
    conversation = await _conversation_for(hub, acting, request.match_info["conversation"])
    data = await _body(request)
    text = _str(data, "text")
    if _str(data, "canned"):
        text = await state.render_canned(hub, acting, data["canned"], conversation)
    if not text:
        raise UsageError("'text' (or 'canned') is required")
    message = await conversations.reply(hub, acting, conversation, text, in_reply_to_uri=_str(data, "in_reply_to"))
    return web.json_response({"uri": message.uri}, status=201)


async def remove_message(request, hub, _account, acting):
    conversation = await _conversation_for(hub, acting, request.match_info["conversation"])
    uri = request.query.get("uri")
    if not uri:
        raise UsageError("the 'uri' query parameter names the message")
    await conversations.remove_message(hub, acting, conversation, uri)
    return web.Response(status=204)


async def post_note(request, hub, _account, acting):
    conversation = await _conversation_for(hub, acting, request.match_info["conversation"])
    data = await _body(request)
    await state.update(hub, acting, conversation, note=_str(data, "text", required=True))
    view = await state.show(hub, acting, conversation, mark_read=False)
    return web.json_response({"notes": view["notes"]}, status=201)


async def add_participant(request, hub, _account, acting):
    conversation = await _conversation_for(hub, acting, request.match_info["conversation"])
    data = await _body(request)
    target = await hub.resolve_handle(_str(data, "handle", required=True))
    await conversations.add_participant(hub, acting, conversation, target)
    return web.Response(status=204)


async def close_conversation(request, hub, _account, acting):
    conversation = await _conversation_for(hub, acting, request.match_info["conversation"])
    data = await _body(request)
    closed = data.get("closed", True)
    if not isinstance(closed, bool):
        raise UsageError("'closed' must be true or false")
    await conversations.close(hub, acting, conversation, closed=closed)
    return web.Response(status=204)


async def publish_conversation(request, hub, _account, acting):
    conversation = await _conversation_for(hub, acting, request.match_info["conversation"])
    data = await _body(request)
    public = data.get("public", True)
    if not isinstance(public, bool):
        raise UsageError("'public' must be true or false")
    await conversations.set_public(hub, acting, conversation, public=public)
    return web.Response(status=204)


async def list_members(request, hub, _account, acting):
    return web.json_response({"items": await access.list_members(hub, acting)})


async def add_member(request, hub, _account, acting):
    data = await _body(request)
    username = _str(data, "username", required=True)
    apps = data.get("apps")
    if apps is not None and not isinstance(apps, bool):
        raise UsageError("'apps' must be true or false")
    row = await access.add_member(hub, acting, username, role=_str(data, "role", required=True))
    if apps is not None:
        await access.set_app_access(hub, acting, username, allow=apps)
    allowed = bool(apps) or row.role in ("owner", "admin") or (apps is None and bool(row.app_access))
    return web.json_response({"username": username, "role": row.role, "apps": allowed}, status=201)


async def remove_member(request, hub, _account, acting):
    await access.remove_member(hub, acting, request.match_info["username"])
    return web.Response(status=204)


async def audit_log(request, hub, _account, acting):
    acting.require("admin")
    try:
        limit = max(1, min(int(request.query.get("limit", "100")), 1000))
    except ValueError:
        raise UsageError("limit must be a number") from None
    async with hub.db.read() as conn:
        rows = await org_store.list_audit(conn, acting.actor.id, limit=limit, before_id=request.query.get("before"))
    items = [{"id": r.id, "at": state.iso(r.created_at), "member": r.username, "action": r.action,
              "conversation": r.conversation_id, "detail": r.detail} for r in rows]
    return web.json_response({"items": items})


async def list_canned(request, hub, _account, acting):
    return web.json_response({"items": await state.list_canned(hub, acting)})


async def save_canned(request, hub, _account, acting):
    data = await _body(request)
    await state.save_canned(hub, acting, _str(data, "name", required=True), _str(data, "text", required=True))
    return web.Response(status=204)


async def list_webhooks(request, hub, _account, acting):
    return web.json_response({"items": await webhooks.list_(hub, acting)})


async def create_webhook(request, hub, _account, acting):
    data = await _body(request)
    created = await webhooks.create(hub, acting, _str(data, "url", required=True), _str_list(data, "events") or None)
    return web.json_response(created, status=201)


async def delete_webhook(request, hub, _account, acting):
    await webhooks.remove(hub, acting, request.match_info["webhook"])
    return web.Response(status=204)


async def list_channels(request, hub, _account, acting):
    from hub.bridges import api as bridge_api

    return web.json_response({"items": await bridge_api.channels_of(hub, acting)})


async def create_channel(request, hub, _account, acting):
    from hub.bridges import api as bridge_api

    data = await _body(request)
    acting.require("admin")
    created = await bridge_api.create_bridge(hub, _str(data, "name", required=True), kind="webhook",
                                             url=_str(data, "url", required=True), owner=acting.actor.username,
                                             capabilities=_str_list(data, "capabilities"))
    return web.json_response(created, status=201)


async def delete_channel(request, hub, _account, acting):
    from hub.bridges import api as bridge_api

    await bridge_api.remove_channel(hub, acting, request.match_info["name"])
    return web.Response(status=204)


async def set_network(request, hub, _account, acting):
    from hub.bridges.core import set_network_allowed

    conversation = await _conversation_for(hub, acting, request.match_info["conversation"])
    networks = await set_network_allowed(hub, acting, conversation, request.match_info["network"],
                                         request.method == "PUT")
    return web.json_response({"networks": [{"network": k, "origin": v} for k, v in networks.items()]})


async def list_identities(request, hub, _account, acting):
    from hub.bridges import claims

    acting.require("admin")
    return web.json_response({"items": await claims.list_claimed(hub, acting)})


async def claim_identity(request, hub, _account, acting):
    from hub.bridges import claims

    data = await _body(request)
    out = await claims.start(hub, acting, _str(data, "network", required=True), _str(data, "remote_id", required=True))
    return web.json_response(out, status=202)


async def confirm_identity(request, hub, _account, acting):
    from hub.bridges import claims

    data = await _body(request)
    out = await claims.confirm(hub, acting, _str(data, "network", required=True), _str(data, "remote_id", required=True),
                               _str(data, "code", required=True))
    return web.json_response(out)


async def get_notifications(request, hub, account, acting):
    return web.json_response(await notify.choices_of(hub, account, acting.actor.id))


async def set_notifications(request, hub, account, acting):
    data = await _body(request)
    unknown = sorted(set(data) - set(notify.CHOICES))
    if unknown:
        raise UsageError(f"unknown keys {', '.join(unknown)}: use {', '.join(notify.CHOICES)}")
    if not all(isinstance(v, bool) for v in data.values()):
        raise UsageError("each choice must be true or false")
    await notify.set_choices(hub, account.id, acting.actor.id, data)
    return web.json_response(await notify.choices_of(hub, account, acting.actor.id))


async def openapi(request: web.Request) -> web.Response:
    from hub.openapi import document

    hub = request.app[HUB_KEY]
    return web.json_response(document(hub.cfg.base_url), headers={"Access-Control-Allow-Origin": "*"})


async def not_found(request: web.Request) -> web.Response:
    return error(404, f"no such endpoint: {request.method} {request.path}")


# --- consent-based data sharing -----------------------------------------------------------------


async def get_profile(request, hub, _account, acting):
    from hub import consent

    return web.json_response({"items": await consent.profile(hub, acting)})


async def put_profile(request, hub, _account, acting):
    from hub import consent

    data = await _body(request)
    items = data.get("items")
    if not isinstance(items, dict) or not all(isinstance(v, (str, type(None))) for v in items.values()):
        raise UsageError("'items' must map item names to strings (null removes one)")
    for name, value in items.items():
        await consent.set_item(hub, acting, name, value if value != "" else None)
    return web.json_response({"items": await consent.profile(hub, acting)})


async def list_grants(request, hub, _account, acting):
    from hub import consent

    return web.json_response({"items": await consent.grants(hub, acting)})


async def create_grant(request, hub, _account, acting):
    from hub import consent

    data = await _body(request)
    org = await hub.resolve_handle(_str(data, "organization", required=True))
    grant = await consent.grant(hub, acting, org, items=_str_list(data, "items"), purposes=_str_list(data, "purposes"),
                                conversation_uri=_str(data, "conversation"), expires=_str(data, "expires"))
    return web.json_response(grant, status=201)


async def revoke_grants(request, hub, _account, acting):
    from hub import consent

    data = await _body(request)
    org = await hub.resolve_handle(_str(data, "organization", required=True))
    return web.json_response({"items": await consent.revoke(hub, acting, org)})


async def access_log(request, hub, _account, acting):
    from hub import consent

    return web.json_response({"items": await consent.access_log(hub, acting)})


async def get_receipt(request, hub, _account, acting):
    from hub.store import consent as consent_store

    acting.require("agent")
    async with hub.db.read() as conn:
        receipt = await consent_store.get_receipt(conn, request.match_info["receipt"])
        grant = await consent_store.get_grant(conn, receipt.grant_id) if receipt is not None else None
    if grant is None or acting.actor.id not in (grant.customer_id if grant.side == "customer" else None,
                                                grant.organization_id if grant.side == "organization" else None):
        raise NotFound("no such receipt")
    return web.json_response(receipt.document, headers={
        "Content-Disposition": f'attachment; filename="consent-receipt-{receipt.id}.json"'})


async def pending_offers(request, hub, _account, acting):
    from hub import consent

    return web.json_response({"items": await consent.pending(hub, acting)})


async def decide_offer(request, hub, _account, acting):
    from hub import consent

    data = await _body(request)
    accept = data.get("accept")
    if not isinstance(accept, bool):
        raise UsageError("'accept' must be true or false")
    return web.json_response(await consent.decide(hub, acting, _str(data, "offer", required=True), accept=accept))


async def read_granted(request, hub, _account, acting):
    """What the organization may read of a customer for a purpose, now: the API a CRM uses."""
    from hub import consent

    customer_handle, purpose = request.query.get("customer"), request.query.get("purpose")
    if not customer_handle or not purpose:
        raise UsageError("give customer (a handle or URI) and purpose")
    customer = await consent.customer_for(hub, customer_handle)
    items = await consent.read(hub, acting, customer, purpose, conversation_uri=request.query.get("conversation"))
    return web.json_response({"customer": customer.uri if customer is not None else None, "purpose": purpose,
                              "items": items},
                             headers={"Cache-Control": "no-store"})


async def request_export(request, hub, _account, acting):
    from hub import export

    data = await _body(request)
    private_key = data.get("private_key", True)
    if not isinstance(private_key, bool):
        raise UsageError("'private_key' must be true or false")
    return web.json_response(await export.request_export(hub, acting, private_key=private_key), status=202)


async def delete_actor(request, hub, _account, acting):
    """Leaving for good (``hub/leaving.py``): the body names the account again, ``{"confirm": USERNAME}``."""
    from hub import leaving

    acting.require("owner")
    leaving.check_confirmation(acting, _str(await _body(request), "confirm", required=True))
    return web.json_response(await leaving.delete_account(hub, acting))


async def import_archive(request, hub, _account, acting):
    """The body is an export archive (``application/zip``), streamed to disk; imported into this (empty)
    account."""
    from hub import importer

    acting.require("owner")
    if request.content_type not in ("application/zip", "application/octet-stream"):
        raise UsageError("send the archive as the body, with Content-Type: application/zip")
    if request.content_length and request.content_length > hub.cfg.max_import_bytes:
        raise HubError(f"the archive is larger than {hub.cfg.max_import_bytes} bytes", status=413)
    summary = await importer.import_upload(hub, acting.actor.username, request.content.iter_chunked(256 * 1024))
    return web.json_response(summary)


async def list_aliases(request, hub, _account, acting):
    acting.require("owner")
    return web.json_response({"items": list(acting.actor.also_known_as or [])})


async def add_alias(request, hub, _account, acting):
    from hub import moving

    acting.require("owner")
    old = await moving.old_account(hub, _str(await _body(request), "alias", required=True))
    return web.json_response({"items": await moving.add_alias(hub, acting, old)})


async def move_actor(request, hub, _account, acting):
    from hub import moving

    acting.require("owner")
    target = await hub.resolve_handle(_str(await _body(request), "target", required=True))
    return web.json_response(await moving.move(hub, acting, target))


async def list_exports(request, hub, _account, acting):
    from hub import export

    acting.require("owner")
    return web.json_response({"items": await export.list_exports(hub, acting)})


async def show_export(request, hub, _account, acting):
    from hub import export

    acting.require("owner")
    return web.json_response(await export.export_status(hub, acting, request.match_info["export"]))


ROUTES = [
    ("GET", "/me", me),
    ("GET", "/actors/{actor}/conversations", list_conversations),
    ("POST", "/actors/{actor}/conversations", start_conversation),
    ("GET", "/actors/{actor}/conversations/{conversation}", show_conversation),
    ("PATCH", "/actors/{actor}/conversations/{conversation}", update_conversation),
    ("POST", "/actors/{actor}/conversations/{conversation}/messages", post_message),
    ("DELETE", "/actors/{actor}/conversations/{conversation}/messages", remove_message),
    ("POST", "/actors/{actor}/conversations/{conversation}/notes", post_note),
    ("POST", "/actors/{actor}/conversations/{conversation}/participants", add_participant),
    ("POST", "/actors/{actor}/conversations/{conversation}/close", close_conversation),
    ("POST", "/actors/{actor}/conversations/{conversation}/publish", publish_conversation),
    ("GET", "/actors/{actor}/members", list_members),
    ("POST", "/actors/{actor}/members", add_member),
    ("DELETE", "/actors/{actor}/members/{username}", remove_member),
    ("GET", "/actors/{actor}/audit", audit_log),
    ("GET", "/actors/{actor}/canned-responses", list_canned),
    ("POST", "/actors/{actor}/canned-responses", save_canned),
    ("GET", "/actors/{actor}/webhooks", list_webhooks),
    ("POST", "/actors/{actor}/webhooks", create_webhook),
    ("DELETE", "/actors/{actor}/webhooks/{webhook}", delete_webhook),
    ("GET", "/actors/{actor}/channels", list_channels),
    ("POST", "/actors/{actor}/channels", create_channel),
    ("DELETE", "/actors/{actor}/channels/{name}", delete_channel),
    ("PUT", "/actors/{actor}/conversations/{conversation}/networks/{network}", set_network),
    ("DELETE", "/actors/{actor}/conversations/{conversation}/networks/{network}", set_network),
    ("GET", "/actors/{actor}/identities", list_identities),
    ("POST", "/actors/{actor}/identities", claim_identity),
    ("POST", "/actors/{actor}/identities/confirm", confirm_identity),
    ("GET", "/actors/{actor}/notifications", get_notifications),
    ("PATCH", "/actors/{actor}/notifications", set_notifications),
    ("GET", "/actors/{actor}/profile", get_profile),
    ("PUT", "/actors/{actor}/profile", put_profile),
    ("GET", "/actors/{actor}/consent/grants", list_grants),
    ("POST", "/actors/{actor}/consent/grants", create_grant),
    ("POST", "/actors/{actor}/consent/revoke", revoke_grants),
    ("GET", "/actors/{actor}/consent/log", access_log),
    ("GET", "/actors/{actor}/consent/receipts/{receipt}", get_receipt),
    ("GET", "/actors/{actor}/consent/pending", pending_offers),
    ("POST", "/actors/{actor}/consent/decisions", decide_offer),
    ("GET", "/actors/{actor}/consent/data", read_granted),
    ("POST", "/actors/{actor}/exports", request_export),
    ("DELETE", "/actors/{actor}", delete_actor),
    ("POST", "/actors/{actor}/import", import_archive),
    ("GET", "/actors/{actor}/aliases", list_aliases),
    ("POST", "/actors/{actor}/aliases", add_alias),
    ("POST", "/actors/{actor}/move", move_actor),
    ("GET", "/actors/{actor}/exports", list_exports),
    ("GET", "/actors/{actor}/exports/{export}", show_export),
]


def add_routes(app: web.Application, routes, wrap) -> None:
    """``(method, path, handler)`` under ``BASE``, each wrapped, with and without a trailing slash."""
    for method, path, handler in routes:
        wrapped = wrap(handler)
        app.router.add_route(method, BASE + path, wrapped)
        app.router.add_route(method, BASE + path + "/", wrapped)


def setup(app: web.Application, hub: Hub) -> None:
    app[HUB_KEY] = hub
    add_routes(app, ROUTES, endpoint)
    app.router.add_get(BASE + "/openapi.json", openapi)
    app.router.add_route("*", BASE + "/{tail:.*}", not_found)


"""The OpenAPI 3.1 document of ``/api/roundtable/v1`` (served as ``openapi.json``).

Kept beside the routes (``hub/api.py``); a test checks that every route is
described here and every path described here is routed.
"""

from __future__ import annotations

from hub import __version__

STATUS = {"type": "string", "enum": ["open", "pending", "snoozed", "resolved"]}
TIME = {"type": ["string", "null"], "format": "date-time"}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "Notifications": {
        "type": "object",
        "description": "Which events the login is mailed about for this actor (through the hub's relay).",
        "required": ["conversations", "messages", "assignments", "mail", "email"],
        "properties": {
            "conversations": {"type": "boolean", "description": "a new conversation started by someone else"},
            "messages": {"type": "boolean", "description": "a new message from someone else in its conversations"},
            "assignments": {"type": "boolean", "description": "a conversation assigned to the login by another member"},
            "mail": {"type": "boolean", "description": "the hub can send mail at all (a relay is configured)"},
            "email": {"type": "boolean", "description": "the login has an email address"},
        },
    },
    "Conversation": {
        "type": "object",
        "description": "One actor's view of a conversation: shared facts and its own private state.",
        "required": ["id", "uri", "owner", "participants", "status", "labels", "last_message"],
        "properties": {
            "id": {"type": "string", "description": "this hub's id of the conversation (use it in paths)"},
            "uri": {"type": "string", "format": "uri", "description": "the conversation's ActivityPub id (its context)"},
            "owner": {"type": ["string", "null"], "format": "uri", "description": "the owning customer's actor URI"},
            "participants": {"type": "array", "items": {"type": "string", "format": "uri"}},
            "subject": {"type": ["string", "null"]},
            "status": STATUS,
            "snoozed_until": TIME,
            "assignee": {"type": ["string", "null"], "description": "member username"},
            "team": {"type": ["string", "null"]},
            "priority": {"type": "integer"},
            "labels": {"type": "array", "items": {"type": "string"}},
            "unread": {"type": "integer", "description": "messages from others since this login last read it"},
            "waiting_since": TIME,
            "first_response_at": TIME,
            "last_activity": TIME,
            "last_message": {
                "type": ["object", "null"],
                "properties": {"uri": {"type": "string"}, "author": {"type": "string"}, "text": {"type": "string"},
                               "published": TIME},
            },
            "closed": {"type": "boolean"},
            "public": {"type": "boolean", "description": "readable by anyone at its URI"},
            "hosted_here": {"type": "boolean", "description": "this hub keeps the conversation's container"},
        },
    },
    "Delivery": {
        "type": "object",
        "properties": {
            "recipient": {"type": "string", "format": "uri"},
            "state": {"type": "string", "enum": ["queued", "delivered", "failed", "gone", "relayed"]},
            "inbox": {"type": ["string", "null"]},
            "attempts": {"type": "integer"},
            "last_status": {"type": ["integer", "null"]},
            "last_error": {"type": ["string", "null"]},
        },
    },
    "Message": {
        "type": "object",
        "required": ["uri", "author", "author_name", "network", "text", "published", "delivery"],
        "properties": {
            "uri": {"type": "string", "format": "uri"},
            "author": {"type": "string", "format": "uri"},
            "author_name": {"type": "string"},
            "author_handle": {"type": "string"},
            "member": {"type": ["string", "null"], "description": "the member who wrote it (own messages only)"},
            "network": {"type": "string"},
            "text": {"type": "string"},
            "html": {"type": "string", "description": "sanitised HTML"},
            "published": TIME,
            "edited": TIME,
            "in_reply_to": {"type": ["string", "null"]},
            "delivery": {"type": ["array", "null"], "items": _ref("Delivery"),
                         "description": "per recipient, for the actor's own messages; null for others'"},
        },
    },
    "Note": {
        "type": "object",
        "description": "A private note: never leaves this hub.",
        "properties": {"id": {"type": "string"}, "author": {"type": ["string", "null"]}, "text": {"type": "string"},
                       "created": TIME},
    },
    "ConversationView": {
        "type": "object",
        "required": ["conversation", "messages", "notes"],
        "properties": {"conversation": _ref("Conversation"), "messages": {"type": "array", "items": _ref("Message")},
                       "notes": {"type": "array", "items": _ref("Note")}},
    },
    "Member": {"type": "object", "properties": {"username": {"type": "string"},
                                                "role": {"type": "string", "enum": ["owner", "admin", "agent"]},
                                                "since": TIME,
                                                "apps": {"type": "boolean", "description":
                                                         "may speak as the actor from fediverse apps (its own "
                                                         "OAuth token); admins and owners always may"}}},
    "Grant": {"type": "object", "properties": {
        "id": {"type": "string"}, "uri": {"type": "string"}, "side": {"type": "string", "enum": ["customer", "organization"]},
        "state": {"type": "string", "enum": ["offered", "accepted", "rejected", "revoked", "expired"]},
        "offer": {"type": "string"}, "customer": {"type": "string"}, "organization": {"type": "string"},
        "items": {"type": "array", "items": {"type": "string"}}, "purposes": {"type": "array", "items": {"type": "string"}},
        "conversation": {"type": ["string", "null"]}, "expires": {"type": ["string", "null"]},
        "receipts": {"type": "array", "items": {"type": "object"}}}},
    "Export": {"type": "object", "properties": {
        "id": {"type": "string"}, "state": {"type": "string", "enum": ["queued", "building", "done", "failed", "expired"]},
        "progress": {"type": "integer", "description": "percent"}, "size": {"type": ["integer", "null"]},
        "expires": {"type": ["string", "null"]}, "download": {"type": "string", "description": "only when requested"}}},
    "AuditEntry": {"type": "object", "properties": {"id": {"type": "string"}, "at": TIME, "member": {"type": ["string", "null"]},
                                                    "action": {"type": "string"}, "conversation": {"type": ["string", "null"]},
                                                    "detail": {"type": ["object", "null"]}}},
    "Canned": {"type": "object", "properties": {"name": {"type": "string"}, "text": {"type": "string"}}},
    "Webhook": {"type": "object", "properties": {
        "id": {"type": "string"}, "url": {"type": "string", "format": "uri"},
        "events": {"type": "array", "items": {"type": "string", "enum": [
            "conversation.created", "conversation.status_changed", "message.created", "*"]}},
        "active": {"type": "boolean"},
        "secret": {"type": "string", "description": "only in the answer to its creation"}}},
}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _items(schema: dict, extra: dict | None = None) -> dict:
    props = {"items": {"type": "array", "items": schema}}
    props.update(extra or {})
    return {"type": "object", "properties": props}


def _body(properties: dict, required: list[str] | None = None) -> dict:
    return {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "properties": properties, "required": required or []}}}}


from hub.consent import PURPOSES  # noqa: E402

PROFILE = {"type": "object", "properties": {"items": {"type": "object", "additionalProperties": {"type": "string"}}}}
ACTOR = {"name": "actor", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "username of the local actor (customer or organization) the login acts for"}
CONV = {"name": "conversation", "in": "path", "required": True, "schema": {"type": "string"},
        "description": "the conversation's id on this hub"}
ERRORS = {"400": _json(_ref("Error"), "bad input"), "401": _json(_ref("Error"), "no or bad token"),
          "403": _json(_ref("Error"), "not a member, or the role is too low"),
          "404": _json(_ref("Error"), "no such conversation (or not the actor's)")}


def _op(summary: str, responses: dict, *, params: list | None = None, body: dict | None = None) -> dict:
    op = {"summary": summary, "parameters": params or [], "responses": {**responses, **ERRORS}}
    if body is not None:
        op["requestBody"] = body
    return op


def document(base_url: str) -> dict:
    conv_path = "/actors/{actor}/conversations/{conversation}"
    query = [
        {"name": n, "in": "query", "required": False, "schema": s, "description": d}
        for n, s, d in (
            ("status", STATUS, "only this status"),
            ("assignee", {"type": "string"}, "member username, or 'none' for unassigned"),
            ("label", {"type": "string"}, "only with this label"),
            ("participant", {"type": "string"}, "handle or actor URI of a participant"),
            ("network", {"type": "string"}, "only conversations with messages from this network"),
            ("q", {"type": "string"}, "full-text search of message text"),
            ("cursor", {"type": "string"}, "next_cursor of the previous page"),
            ("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page size (default 20)"),
        )
    ]
    paths = {
        "/me": {"get": _op("The login the token belongs to, and the actors it acts for", {"200": _json({"type": "object"})})},
        "/actors/{actor}/conversations": {
            "get": _op("The actor's inbox, most recent activity first", {
                "200": _json(_items(_ref("Conversation"), {"next_cursor": {"type": ["string", "null"]}}))}, params=[ACTOR, *query]),
            "post": _op("Start a conversation (the customer in it owns it)", {
                "201": _json({"type": "object", "properties": {"conversation": _ref("Conversation"), "message": {"type": "string"}}})},
                params=[ACTOR], body=_body({"to": {"type": "array", "items": {"type": "string"}},
                                            "text": {"type": "string"}, "subject": {"type": "string"}}, ["to", "text"])),
        },
        conv_path: {
            "get": _op("Messages, the actor's private notes and state; marks it read for the login",
                       {"200": _json(_ref("ConversationView"))}, params=[ACTOR, CONV]),
            "patch": _op("Change the actor's own state of the conversation", {"200": _json(_ref("Conversation"))},
                         params=[ACTOR, CONV], body=_body({
                             "status": STATUS, "snooze_until": TIME, "assignee": {"type": ["string", "null"]},
                             "team": {"type": "string"}, "priority": {"type": "integer"},
                             "add_labels": {"type": "array", "items": {"type": "string"}},
                             "remove_labels": {"type": "array", "items": {"type": "string"}}})),
        },
        conv_path + "/messages": {
            "post": _op("Write in the conversation as the actor (members sign with their name)",
                        {"201": _json({"type": "object", "properties": {"uri": {"type": "string"}}})},
                        params=[ACTOR, CONV], body=_body({"text": {"type": "string"}, "canned": {"type": "string"},
                                                          "in_reply_to": {"type": "string"}})),
            "delete": _op("The owner takes a message out of the conversation", {"204": {"description": "removed"}},
                          params=[ACTOR, CONV, {"name": "uri", "in": "query", "required": True, "schema": {"type": "string"}}]),
        },
        conv_path + "/notes": {
            "post": _op("Add a private note (never leaves this hub)", {"201": _json({"type": "object", "properties": {
                "notes": {"type": "array", "items": _ref("Note")}}})}, params=[ACTOR, CONV],
                body=_body({"text": {"type": "string"}}, ["text"])),
        },
        conv_path + "/participants": {
            "post": _op("The owner adds a participant", {"204": {"description": "added"}}, params=[ACTOR, CONV],
                        body=_body({"handle": {"type": "string"}}, ["handle"])),
        },
        conv_path + "/close": {
            "post": _op("The owner closes (or reopens) the conversation", {"204": {"description": "done"}},
                        params=[ACTOR, CONV], body=_body({"closed": {"type": "boolean"}})),
        },
        conv_path + "/publish": {
            "post": _op("The owner makes the conversation public (readable by anyone at its URI, private notes never) "
                        "or, with public=false, private again", {"204": {"description": "done"}},
                        params=[ACTOR, CONV], body=_body({"public": {"type": "boolean"}})),
        },
        "/actors/{actor}/members": {
            "get": _op("Members and roles", {"200": _json(_items(_ref("Member")))}, params=[ACTOR]),
            "post": _op("Add a member (admin)", {"201": _json(_ref("Member"))}, params=[ACTOR],
                        body=_body({"username": {"type": "string"}, "role": {"type": "string", "enum": ["owner", "admin", "agent"]}},
                                   ["username", "role"])),
        },
        "/actors/{actor}/members/{username}": {
            "delete": _op("Remove a member (admin)", {"204": {"description": "removed"}},
                          params=[ACTOR, {"name": "username", "in": "path", "required": True, "schema": {"type": "string"}}]),
        },
        "/actors/{actor}/audit": {
            "get": _op("The audit log of members' reads and actions (admin)", {"200": _json(_items(_ref("AuditEntry")))},
                       params=[ACTOR, {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                               {"name": "before", "in": "query", "schema": {"type": "string"}}]),
        },
        "/actors/{actor}/canned-responses": {
            "get": _op("Canned responses", {"200": _json(_items(_ref("Canned")))}, params=[ACTOR]),
            "post": _op("Save a canned response (admin); placeholders {customer_name}, {actor_name}, {member_name}",
                        {"204": {"description": "saved"}}, params=[ACTOR],
                        body=_body({"name": {"type": "string"}, "text": {"type": "string"}}, ["name", "text"])),
        },
        "/actors/{actor}/webhooks": {
            "get": _op("Webhooks (admin)", {"200": _json(_items(_ref("Webhook")))}, params=[ACTOR]),
            "post": _op("Register an HTTPS endpoint (admin); the answer holds its secret, once",
                        {"201": _json(_ref("Webhook"))}, params=[ACTOR],
                        body=_body({"url": {"type": "string"}, "events": {"type": "array", "items": {"type": "string"}}}, ["url"])),
        },
        "/actors/{actor}/webhooks/{webhook}": {
            "delete": _op("Remove a webhook (admin)", {"204": {"description": "removed"}},
                          params=[ACTOR, {"name": "webhook", "in": "path", "required": True, "schema": {"type": "string"}}]),
        },
        "/actors/{actor}/channels": {
            "get": _op("The actor's webhook channels (admin)", {"200": _json(_items({"type": "object"}))}, params=[ACTOR]),
            "post": _op("Create a webhook channel (admin): inbound signed JSON, outbound POSTs to `url`; the answer "
                        "holds its secret, once", {"201": _json({"type": "object", "properties": {
                            "name": {"type": "string"}, "secret": {"type": "string"}, "inbound_url": {"type": "string"}}})},
                        params=[ACTOR], body=_body({"name": {"type": "string"}, "url": {"type": "string"},
                                                    "capabilities": {"type": "array", "items": {"type": "string"}}},
                                                   ["name", "url"])),
        },
        "/actors/{actor}/channels/{name}": {
            "delete": _op("Remove a webhook channel (admin)", {"204": {"description": "removed"}},
                          params=[ACTOR, {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]),
        },
        conv_path + "/networks/{network}": {
            "put": _op("The owner allows a bridged network for the conversation",
                       {"200": _json({"type": "object", "properties": {"networks": {"type": "array"}}})},
                       params=[ACTOR, CONV, {"name": "network", "in": "path", "required": True, "schema": {"type": "string"}}]),
            "delete": _op("The owner stops mirroring the conversation to a bridged network",
                          {"200": _json({"type": "object", "properties": {"networks": {"type": "array"}}})},
                          params=[ACTOR, CONV, {"name": "network", "in": "path", "required": True,
                                                "schema": {"type": "string"}}]),
        },
        "/actors/{actor}/identities": {
            "get": _op("Bridged identities the actor has claimed (admin)", {"200": _json(_items({"type": "object"}))},
                       params=[ACTOR]),
            "post": _op("Claim a bridged identity (an email address): a one-time code is sent to it (admin)",
                        {"202": _json({"type": "object"})}, params=[ACTOR],
                        body=_body({"network": {"type": "string"}, "remote_id": {"type": "string"}},
                                   ["network", "remote_id"])),
        },
        "/actors/{actor}/identities/confirm": {
            "post": _op("Confirm a claim with its code: the identity and its conversations become the actor's (admin)",
                        {"200": _json({"type": "object"})}, params=[ACTOR],
                        body=_body({"network": {"type": "string"}, "remote_id": {"type": "string"},
                                    "code": {"type": "string"}}, ["network", "remote_id", "code"])),
        },
        "/actors/{actor}/notifications": {
            "get": _op("The login's choices of notification mails for this actor",
                       {"200": _json(_ref("Notifications"))}, params=[ACTOR]),
            "patch": _op("Change some of the login's choices (the keys given; the others stay)",
                         {"200": _json(_ref("Notifications"))}, params=[ACTOR],
                         body=_body({c: {"type": "boolean"} for c in ("conversations", "messages", "assignments")})),
        },
        # Consent-based data sharing. These also take an OAuth token (from /oauth/authorize) with the explicit
        # scope read:consent (GET) or write:consent, acting for the actor it was issued for.
        "/actors/{actor}/profile": {
            "get": _op("The actor's data items (private unless granted)", {"200": _json(PROFILE)}, params=[ACTOR]),
            "put": _op("Set items (null or \"\" removes one)", {"200": _json(PROFILE)}, params=[ACTOR],
                       body=_body({"items": {"type": "object", "additionalProperties": {"type": ["string", "null"]}}},
                                  ["items"])),
        },
        "/actors/{actor}/consent/grants": {
            "get": _op("Grants the actor made (as a customer) or received (as an organization), with receipts",
                       {"200": _json(_items(_ref("Grant")))}, params=[ACTOR]),
            "post": _op("Offer an organization access to items for purposes (an ActivityPub Offer)",
                        {"201": _json(_ref("Grant"))}, params=[ACTOR], body=_body({
                            "organization": {"type": "string", "description": "handle or actor URI"},
                            "items": {"type": "array", "items": {"type": "string"}},
                            "purposes": {"type": "array", "items": {"type": "string", "enum": list(PURPOSES)}},
                            "conversation": {"type": "string"}, "expires": TIME},
                            ["organization", "items", "purposes"])),
        },
        "/actors/{actor}/consent/revoke": {
            "post": _op("End every live grant to an organization, at once (Undo)", {"200": _json(_items(_ref("Grant")))},
                        params=[ACTOR], body=_body({"organization": {"type": "string"}}, ["organization"])),
        },
        "/actors/{actor}/consent/log": {
            "get": _op("Every read of the actor's data by an organization", {"200": _json(_items({
                "type": "object", "properties": {"at": TIME, "reader": {"type": "string"}, "reader_name": {
                    "type": "string"}, "purpose": {"type": "string"}, "items": {"type": "array", "items": {
                        "type": "string"}}, "text": {"type": "string"}}}))}, params=[ACTOR]),
        },
        "/actors/{actor}/consent/receipts/{receipt}": {
            "get": _op("One consent receipt (Kantara CR 1.1 fields, signed by the customer's hub), as a download",
                       {"200": _json({"type": "object"})},
                       params=[ACTOR, {"name": "receipt", "in": "path", "required": True, "schema": {"type": "string"}}]),
        },
        "/actors/{actor}/consent/pending": {
            "get": _op("Offers to the organization waiting for a member's decision",
                       {"200": _json(_items(_ref("Grant")))}, params=[ACTOR]),
        },
        "/actors/{actor}/consent/decisions": {
            "post": _op("Accept or reject an offer (admins)", {"200": _json(_ref("Grant"))}, params=[ACTOR],
                        body=_body({"offer": {"type": "string"}, "accept": {"type": "boolean"}}, ["offer", "accept"])),
        },
        "/actors/{actor}/exports": {
            "post": _op("Build an archive of everything that is the actor's, in the background (owner); the answer "
                        "holds the download link, shown once, which works for 24 hours once the archive is done",
                        {"202": _json(_ref("Export"))}, params=[ACTOR],
                        body=_body({"private_key": {"type": "boolean", "description": "include the private key"}})),
            "get": _op("The actor's recent exports and their progress (owner)", {"200": _json(_items(_ref("Export")))},
                       params=[ACTOR]),
        },
        "/actors/{actor}": {
            "delete": _op("Leave for good (owner): grants revoked, owned conversations closed, Delete federated, "
                          "bridged people told, data erased; the body names the account again",
                          {"200": _json({"type": "object", "properties": {
                              k: {"type": "integer"} for k in ("grants_revoked", "conversations_closed",
                                                               "messages_erased", "identities_erased", "bridged_told")
                          } | {"actor": {"type": "string"}}})}, params=[ACTOR],
                          body=_body({"confirm": {"type": "string", "description": "the account's username"}},
                                     ["confirm"])),
        },
        "/actors/{actor}/import": {
            "post": _op("Import an export archive into this empty account (owner): the body is the ZIP "
                        "(Content-Type: application/zip), at most max_import_bytes",
                        {"200": _json({"type": "object"})}, params=[ACTOR],
                        body={"required": True, "content": {"application/zip": {"schema": {
                            "type": "string", "format": "binary"}}}}),
        },
        "/actors/{actor}/aliases": {
            "get": _op("The accounts this one is also known as (alsoKnownAs)", {"200": _json(_items({"type": "string"}))},
                       params=[ACTOR]),
            "post": _op("Name another account (the one moved from) as this one (owner); a URI is enough when its "
                        "server is gone", {"200": _json(_items({"type": "string"}))}, params=[ACTOR],
                        body=_body({"alias": {"type": "string"}}, ["alias"])),
        },
        "/actors/{actor}/move": {
            "post": _op("Move this account to another that names it in alsoKnownAs (owner): movedTo, Move to "
                        "followers and conversation partners; once in 30 days", {"200": _json({"type": "object"})},
                        params=[ACTOR], body=_body({"target": {"type": "string"}}, ["target"])),
        },
        "/actors/{actor}/exports/{export}": {
            "get": _op("One export's state and progress (owner)", {"200": _json(_ref("Export"))},
                       params=[ACTOR, {"name": "export", "in": "path", "required": True, "schema": {"type": "string"}}]),
        },
        "/actors/{actor}/consent/data": {
            "get": _op("What the organization may read of a customer for a purpose, now: exactly the items an "
                       "active grant covers (read from the customer's hub, logged there); {} when nothing (admins)",
                       {"200": _json({"type": "object", "properties": {
                           "customer": {"type": "string"}, "purpose": {"type": "string"},
                           "items": {"type": "object", "additionalProperties": {"type": "string"}}}})},
                       params=[ACTOR, {"name": "customer", "in": "query", "required": True, "schema": {"type": "string"}},
                               {"name": "purpose", "in": "query", "required": True,
                                "schema": {"type": "string", "enum": list(PURPOSES)}},
                               {"name": "conversation", "in": "query", "schema": {"type": "string"},
                                "description": "a read about this conversation: grants made for it count too"}]),
        },
        # The bridge API: a bridge's own token (`roundtable bridge add`), not a login's.
        "/bridge/items": {
            "post": _op("A bridge run by an operator hands one inbound item, as its connector read it; stored and "
                        "queued before the answer (bridge token)",
                        {"202": _json({"type": "object", "properties": {"item": {"type": "string"}}})},
                        body=_body({"raw_b64": {"type": "string", "description": "the raw item, kept as received"},
                                    "sender": {"type": ["string", "null"]},
                                    "recipients": {"type": "array", "items": {"type": "string"}},
                                    "envelope": {"type": "object", "description": "the message (hub/bridges/base.py Envelope)"},
                                    "rejected": {"type": "object", "description": "why it is no message (a bounce, an auto-reply)"}},
                                   ["raw_b64"])),
        },
        "/bridge/state": {
            "post": _op("A bridge reports its connection state, and where it takes sends (bridge token)",
                        {"200": _json({"type": "object", "properties": {"name": {"type": "string"}, "state": {"type": "string"}}})},
                        body=_body({"state": {"type": "string", "enum": ["connected", "disconnected", "bad_credentials",
                                                                          "error", "stopped"]},
                                    "detail": {"type": ["string", "null"]}, "url": {"type": "string"},
                                    "capabilities": {"type": "object"}}, ["state"])),
        },
        "/bridge/recipients/{username}": {
            "get": _op("Whether a local actor can be written to (bridge token)",
                       {"200": _json({"type": "object", "properties": {"accepts": {"type": "boolean"}}})},
                       params=[{"name": "username", "in": "path", "required": True, "schema": {"type": "string"}}]),
        },
        "/channels/{name}/inbound": {
            "post": {**_op("A webhook channel's inbound message, signed with the channel's secret "
                           "(X-Roundtable-Timestamp, X-Roundtable-Signature); no bearer token",
                           {"202": _json({"type": "object", "properties": {"item": {"type": "string"}}})},
                           params=[{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                           body=_body({"id": {"type": "string"}, "from": {"type": "object", "properties": {
                               "id": {"type": "string"}, "name": {"type": "string"}}},
                               "text": {"type": "string"}, "in_reply_to": {"type": "string"},
                               "attachments": {"type": "array", "items": {"type": "object"}},
                               "published": {"type": "string", "format": "date-time"}}, ["id", "from"])),
                     "security": []},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Roundtable API",
            "version": __version__,
            "description": "The inbox of every actor (customers and organizations alike), for programs. "
                           "Authenticate with `Authorization: Bearer <token>` (`roundtable token create USERNAME`). "
                           "Webhook deliveries are signed: `X-Roundtable-Signature: sha256=HMAC(secret, timestamp + '.' + body)`.",
            "license": {"name": "AGPL-3.0-or-later"},
        },
        "servers": [{"url": base_url + "/api/roundtable/v1"}],
        "security": [{"bearer": []}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": SCHEMAS},
        "paths": paths,
    }

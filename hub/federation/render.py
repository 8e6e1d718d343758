"""Our objects as ActivityStreams JSON (converters ``*_to_json``).

Shapes follow what Mastodon, GoToSocial and Misskey read (see FEDERATION.md):
the actor carries ``publicKey`` in SPKI PEM and Mastodon's extension terms;
a Note carries ``context`` (FEP-7888) and ``conversation`` (OStatus, read
by Mastodon for threading), ``Mention`` tags with ``@user@host`` names,
and ``updated`` on every edit (Mastodon ignores an edit without a newer one).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa

from hub import addressing, crypto
from hub.context import Hub

AS = "https://www.w3.org/ns/activitystreams"
SECURITY = "https://w3id.org/security/v1"
ACTOR_CONTEXT = [
    AS,
    SECURITY,
    {
        "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
        "toot": "http://joinmastodon.org/ns#",
        "featured": {"@id": "toot:featured", "@type": "@id"},
        "alsoKnownAs": {"@id": "as:alsoKnownAs", "@type": "@id"},
        "movedTo": {"@id": "as:movedTo", "@type": "@id"},
        "schema": "http://schema.org#",
        "PropertyValue": "schema:PropertyValue",
        "value": "schema:value",
        "discoverable": "toot:discoverable",
        "indexable": "toot:indexable",
        "webfinger": "https://purl.archive.org/socialweb/webfinger#webfinger",
        "implements": {"@id": "https://w3id.org/fep/844e/implements", "@type": "@id", "@container": "@list"},
    },
]
NOTE_CONTEXT = [
    AS,
    {
        "ostatus": "http://ostatus.org#",
        "conversation": "ostatus:conversation",
        "sensitive": "as:sensitive",
        "Hashtag": "as:Hashtag",
        "contextHistory": {"@id": "https://w3id.org/fep/171b/contextHistory", "@type": "@id"},
        "collectionOf": "https://fediversity.site/apschema#collectionOf",
    },
]
FEP_171B = "https://w3id.org/fep/171b"
RFC_9421 = "https://datatracker.ietf.org/doc/html/rfc9421"
IMPLEMENTS = [
    {"href": FEP_171B, "name": "FEP-171b: Conversation Containers"},
    {"href": RFC_9421, "name": "RFC-9421: HTTP Message Signatures"},
]
AP_CONTENT_TYPE = "application/activity+json; charset=utf-8"


def iso(when: dt.datetime | None) -> str | None:
    if when is None:
        return None
    # Milliseconds, as Mastodon's own API does: messages written within one
    # second keep their order on every hub that receives them.
    when = when.astimezone(dt.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def public_key_pem(hub: Hub, actor: sa.Row) -> str:
    return crypto.public_pem_of(hub.keys.private(actor.private_key_pem))


def actor_to_json(hub: Hub, actor: sa.Row) -> dict:
    """A local actor. Person and Organization render through the same code."""
    u = hub.uris
    if actor.type == "Application":
        uri = u.instance_actor()
        return {
            "@context": ACTOR_CONTEXT,
            "id": uri,
            "type": "Application",
            "preferredUsername": actor.username,
            "name": hub.cfg.instance_name,
            "summary": "",
            "url": hub.cfg.base_url + "/",
            "inbox": actor.inbox_uri,
            "outbox": actor.outbox_uri,
            "endpoints": {"sharedInbox": u.shared_inbox()},
            "manuallyApprovesFollowers": True,
            "discoverable": False,
            "publicKey": {"id": u.instance_key_id(), "owner": uri, "publicKeyPem": public_key_pem(hub, actor)},
            "implements": IMPLEMENTS,  # FEP-844e: an Application states what it implements itself
        }
    doc: dict[str, Any] = {
        "@context": ACTOR_CONTEXT,
        "id": actor.uri,
        "type": actor.type,
        "preferredUsername": actor.username,
        "name": actor.name or actor.username,
        "summary": actor.summary or "",
        "url": actor.url or actor.uri,
        "inbox": actor.inbox_uri,
        "outbox": actor.outbox_uri,
        "followers": actor.followers_uri,
        "following": actor.following_uri,
        "featured": actor.featured_uri,
        "endpoints": {"sharedInbox": actor.shared_inbox_uri},
        "publicKey": {
            "id": u.key_id(actor.username),
            "owner": actor.uri,
            "publicKeyPem": public_key_pem(hub, actor),
        },
        "manuallyApprovesFollowers": bool(actor.manually_approves_followers),
        "discoverable": bool(actor.discoverable),
        "indexable": False,
        "published": iso(actor.published_at),
        "webfinger": f"{actor.username}@{hub.cfg.domain}",
        "attachment": [
            {"type": "PropertyValue", "name": f["name"], "value": f["value"]} for f in (actor.fields or [])
        ],
        "tag": [],
        # FEP-844e: what the software behind this actor implements.
        "generator": {"type": "Application", "name": "Roundtable", "implements": IMPLEMENTS},
    }
    if actor.icon_url:
        doc["icon"] = _image(actor.icon_url)
    header = (actor.settings or {}).get("header_url")
    if header:  # the profile's header picture, where Mastodon and others look for it
        doc["image"] = _image(header)
    if actor.also_known_as:
        doc["alsoKnownAs"] = list(actor.also_known_as)
    if actor.moved_to:
        doc["movedTo"] = actor.moved_to
    return doc


def _image(url: str) -> dict:
    import mimetypes

    kind = mimetypes.guess_type(url.split("?", 1)[0])[0]
    return {"type": "Image", "mediaType": kind if kind and kind.startswith("image/") else "image/png", "url": url}


def mention_tag(hub: Hub, actor: sa.Row) -> dict:
    domain = hub.cfg.domain if actor.local else actor.domain
    return {"type": "Mention", "href": actor.uri, "name": f"@{actor.username}@{domain}"}


def attachment_to_json(hub: Hub, row: sa.Row) -> dict:
    """A stored file as a note's attachment. Mastodon shows ``Image`` (and
    ``Document`` with an image/video/audio ``mediaType``) inline and lists any
    other type as a link; ``name`` is its description (alt text)."""
    from hub import media

    ctype = row.content_type.split(";")[0].strip().lower()
    kind = "Image" if ctype.startswith("image/") else "Document"
    url = row.remote_url if not row.sha256 and row.remote_url else media.url_of(hub.cfg, row.id, row.filename)
    return {"type": kind, "mediaType": ctype, "url": url, "name": row.description or row.filename}


def note_to_json(
    hub: Hub,
    message: sa.Row,
    *,
    author_uri: str,
    context_uri: str | None,
    mentioned: list[sa.Row],
    with_context: bool = True,
    context_history: str | None = None,
    attachments: list[sa.Row] = (),
) -> dict:
    doc: dict[str, Any] = {}
    if with_context:
        doc["@context"] = NOTE_CONTEXT
    doc.update(
        {
            "id": message.uri,
            "type": "Note",
            "attributedTo": author_uri,
            "summary": message.summary,
            "content": message.content_html,
            "source": {"content": message.content_text, "mediaType": "text/plain"},
            "published": iso(message.published_at),
            "url": message.url or message.uri,
            "to": list(message.to_uris),
            "cc": list(message.cc_uris),
            "inReplyTo": message.in_reply_to_uri,
            "sensitive": bool(message.sensitive),
            "tag": [mention_tag(hub, a) for a in mentioned],
            "attachment": [attachment_to_json(hub, a) for a in attachments],
        }
    )
    if context_uri:
        doc["context"] = context_uri
        doc["conversation"] = context_uri
    if context_history:
        # FEP-171b: this conversation's container, kept by its owner's hub.
        doc["contextHistory"] = context_history
    if message.edited_at is not None:
        doc["updated"] = iso(message.edited_at)
    if message.local:
        from urllib.parse import quote

        from hub.text import find_hashtags

        doc["tag"] += [{"type": "Hashtag", "href": f"{hub.cfg.base_url}/tags/{quote(t)}", "name": f"#{t}"}
                       for t in find_hashtags(message.content_text)]
        replies = hub.uris.replies(message.id)
        doc["replies"] = {"id": replies, "type": "OrderedCollection", "first": f"{replies}?page=1"}
    return doc


def tombstone_to_json(message: sa.Row, *, with_context: bool = True) -> dict:
    doc = {"@context": AS} if with_context else {}
    return doc | {
        "id": message.uri,
        "type": "Tombstone",
        "formerType": "Note",
        "deleted": iso(message.deleted_at),
    }


def activity(
    type_: str,
    *,
    id: str,
    actor: str,
    object: Any,
    to: list[str] | None = None,
    cc: list[str] | None = None,
    published: dt.datetime | None = None,
    context: Any = AS,
    target: Any = None,
) -> dict:
    doc: dict[str, Any] = {"@context": context, "id": id, "type": type_, "actor": actor}
    if published is not None:
        doc["published"] = iso(published)
    if to is not None:
        doc["to"] = to
    if cc is not None:
        doc["cc"] = cc
    doc["object"] = object
    if target is not None:
        doc["target"] = target
    return doc


def follow_object(follow_uri: str, follower_uri: str, followee_uri: str) -> dict:
    """The Follow embedded in Accept/Reject/Undo: Mastodon matches by its id,
    then by actor/object; GoToSocial needs actor and object inline."""
    return {"id": follow_uri, "type": "Follow", "actor": follower_uri, "object": followee_uri}


def collection(id: str, total: int | None, first: str | None = None, *, ordered: bool = True) -> dict:
    doc: dict[str, Any] = {"@context": AS, "id": id, "type": "OrderedCollection" if ordered else "Collection"}
    if total is not None:
        doc["totalItems"] = total
    if first:
        doc["first"] = first
    return doc


def collection_page(
    id: str, part_of: str, items: list, *, next: str | None = None, prev: str | None = None,
    total: int | None = None,
) -> dict:
    doc: dict[str, Any] = {"@context": AS, "id": id, "type": "OrderedCollectionPage", "partOf": part_of}
    if total is not None:
        doc["totalItems"] = total
    if next:
        doc["next"] = next
    if prev:
        doc["prev"] = prev
    doc["orderedItems"] = items
    return doc


def is_public_message(message: sa.Row) -> bool:
    return addressing.visible_to_anyone(message.visibility)

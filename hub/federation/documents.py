"""Reading remote ActivityStreams documents as plain JSON.

Incoming JSON-LD is treated as plain JSON with the compact ActivityStreams
names: ``@context`` is never fetched or expanded, unknown properties and
contexts are ignored, and every value may arrive as a string, an object with
an ``id``, or a list of either (servers differ; all are tolerated).
Everything remote that becomes HTML is sanitised here.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any
from urllib.parse import urlsplit

from hub import crypto
from hub import text as textmod
from hub.errors import BadRequest

ACTOR_TYPES = frozenset({"Person", "Organization", "Service", "Application", "Group"})
NOTE_TYPES = frozenset({"Note", "Article", "Page", "Question", "Event", "Video", "Audio", "Image"})


def as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


MAX_URI = 2048
_NOT_IN_URI = re.compile(r"[\x00-\x20\x7f]")


def valid_uri(value: Any) -> str | None:
    """A URI we can store and compare: a string of at most 2048 characters,
    without NUL, spaces or other control characters; else None."""
    if not isinstance(value, str) or not value or len(value) > MAX_URI or _NOT_IN_URI.search(value):
        return None
    return value


def id_of(value: Any) -> str | None:
    """The id of a value that may be a URI, an object with an ``id`` (or a
    Link's ``href``), or a list of them; None when there is no usable one."""
    if isinstance(value, str):
        return valid_uri(value)
    if isinstance(value, dict):
        return valid_uri(value.get("id") or value.get("href"))
    if isinstance(value, list) and value:
        return id_of(value[0])
    return None


def ids_of(value: Any) -> list[str]:
    return [i for i in (id_of(v) for v in as_list(value)) if i]


def types_of(doc: Any) -> set[str]:
    if not isinstance(doc, dict):
        return set()
    return {t for t in as_list(doc.get("type")) if isinstance(t, str)}


# A pure memo of a pure function (no state anyone depends on), kept module-wide.
@functools.lru_cache(maxsize=4096)
def host_of(uri: str | None) -> str:
    if not uri:
        return ""
    try:
        return (urlsplit(uri).netloc or "").lower()
    except ValueError:
        return ""


def same_origin(a: str | None, b: str | None) -> bool:
    """Same scheme and authority (host and port)."""
    if not a or not b:
        return False
    try:
        pa, pb = urlsplit(a), urlsplit(b)
    except ValueError:
        return False
    return pa.scheme.lower() == pb.scheme.lower() and pa.netloc.lower() == pb.netloc.lower() and bool(pa.netloc)


def parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc)


def _str(value: Any, limit: int = 2048) -> str | None:
    if isinstance(value, str):
        return value.replace("\x00", "")[:limit]
    return None


def _bool(value: Any, default: bool) -> bool:
    return value if isinstance(value, bool) else default


def _icon_url(value: Any) -> str | None:
    for item in as_list(value):
        if isinstance(item, str):
            return valid_uri(item)
        if isinstance(item, dict):
            url = item.get("url")
            if isinstance(url, list):
                url = id_of(url)
            elif isinstance(url, dict):
                url = url.get("href")
            if isinstance(url, str):
                return valid_uri(url)
    return None


def parse_keys(doc: dict) -> list[dict]:
    """Every key an actor document declares for itself, as store rows.

    ``publicKey`` may be one object or a list (Fedify); FEP-521a Multikeys in
    ``assertionMethod`` are Ed25519. A key owned by someone else, or whose id
    is on another origin, is ignored: a document cannot claim another
    server's key id (and lock that server's actor out by squatting it).
    """
    actor_uri = doc.get("id")
    out: dict[str, dict] = {}
    for key in as_list(doc.get("publicKey")):
        if not isinstance(key, dict):
            continue
        key_id, pem = key.get("id"), key.get("publicKeyPem")
        owner = key.get("owner") or key.get("controller") or actor_uri
        if not isinstance(key_id, str) or not isinstance(pem, str) or owner != actor_uri:
            continue
        if not same_origin(key_id, actor_uri):
            continue
        try:
            loaded = crypto.load_public_pem(pem)
        except crypto.KeyFormatError:
            continue
        out[key_id] = {"key_id": key_id, "kind": crypto.key_kind(loaded), "public_key": crypto.public_key_to_pem(loaded)}
    for key in as_list(doc.get("assertionMethod")):
        if not isinstance(key, dict) or "Multikey" not in types_of(key):
            continue
        key_id, multibase = key.get("id"), key.get("publicKeyMultibase")
        if not isinstance(key_id, str) or not isinstance(multibase, str) or key.get("controller", actor_uri) != actor_uri:
            continue
        if not same_origin(key_id, actor_uri):
            continue
        try:
            loaded = crypto.load_multikey(multibase)
        except (crypto.KeyFormatError, ValueError):
            continue
        out.setdefault(key_id, {"key_id": key_id, "kind": "ed25519", "public_key": crypto.public_key_to_pem(loaded)})
    return list(out.values())


def parse_actor(doc: Any, *, new_id: str) -> tuple[dict, list[dict]]:
    """Store values and keys of a remote actor document. Raises BadRequest if unusable."""
    if not isinstance(doc, dict):
        raise BadRequest("actor document is not an object")
    uri = valid_uri(doc.get("id"))
    types = types_of(doc) & ACTOR_TYPES
    if not uri or not types:
        raise BadRequest("document is not an actor")
    inbox = id_of(doc.get("inbox"))
    if not inbox:
        raise BadRequest("actor has no inbox")
    username = _str(doc.get("preferredUsername"), 255)
    if not username:
        webfinger = _str(doc.get("webfinger"), 512)
        username = webfinger.split("@", 1)[0] if webfinger else urlsplit(uri).path.rstrip("/").rsplit("/", 1)[-1][:255]
    endpoints = doc.get("endpoints") if isinstance(doc.get("endpoints"), dict) else {}
    shared_inbox = id_of(endpoints.get("sharedInbox")) or id_of(doc.get("sharedInbox"))
    fields = []
    for item in as_list(doc.get("attachment")):
        if isinstance(item, dict) and "PropertyValue" in types_of(item):
            name, value = _str(item.get("name"), 255), _str(item.get("value"))
            if name is not None and value is not None:
                fields.append({"name": name, "value": textmod.sanitize_html(value)})
    url = id_of(doc.get("url"))
    values = {
        "id": new_id,
        "uri": uri,
        "type": sorted(types)[0],
        "username": username,
        "domain": host_of(uri)[:255],
        "name": _str(doc.get("name"), 1024) or None,
        "summary": textmod.sanitize_html(_str(doc.get("summary"), 20000)) or None,
        "url": url or uri,
        "icon_url": _icon_url(doc.get("icon")),
        "image_url": _icon_url(doc.get("image")),
        "manually_approves_followers": _bool(doc.get("manuallyApprovesFollowers"), False),
        "discoverable": _bool(doc.get("discoverable"), False),
        "fields": fields,
        "also_known_as": ids_of(doc.get("alsoKnownAs")),
        "moved_to": id_of(doc.get("movedTo")),
        "inbox_uri": inbox,
        "outbox_uri": id_of(doc.get("outbox")),
        "shared_inbox_uri": shared_inbox,
        "followers_uri": id_of(doc.get("followers")),
        "following_uri": id_of(doc.get("following")),
        "featured_uri": id_of(doc.get("featured")),
        "published_at": parse_time(doc.get("published")),
        "implements": implements_of(doc),
    }
    return values, parse_keys(doc)


def implements_of(doc: dict) -> list[str]:
    """FEP-844e capability URIs of an actor: in its ``generator`` (user actors)
    or on itself (Application actors); tootik and others read both places."""
    hrefs: list[str] = []
    generator = doc.get("generator")
    for source in (doc.get("implements"), generator.get("implements") if isinstance(generator, dict) else None):
        for item in as_list(source):
            href = id_of(item)
            if href and href not in hrefs:
                hrefs.append(href)
    return hrefs[:50]


def mentions_of(note: dict) -> list[str]:
    return [
        href
        for tag in as_list(note.get("tag"))
        if isinstance(tag, dict) and "Mention" in types_of(tag)
        for href in [id_of(tag.get("href"))]
        if href
    ]


def hashtags_of(note: dict) -> list[str]:
    """The names of a note's ``Hashtag`` tags, without the ``#``."""
    out = []
    for tag in as_list(note.get("tag")):
        if isinstance(tag, dict) and "Hashtag" in types_of(tag) and isinstance(tag.get("name"), str):
            name = textmod.tag_name(tag["name"])
            if textmod.find_hashtags("#" + name) == [name]:  # what a #tag can be, nothing else
                out.append(name)
    return list(dict.fromkeys(out))[:20]


def parse_note(note: Any) -> dict:
    """The parts of a remote Note (or Article, Page...) we keep."""
    if not isinstance(note, dict) or not valid_uri(note.get("id")):
        raise BadRequest("object is not a note")
    if not types_of(note) & NOTE_TYPES:
        raise BadRequest(f"unsupported object type {sorted(types_of(note))}")
    content = note.get("content")
    if not isinstance(content, str):
        content_map = note.get("contentMap")
        if isinstance(content_map, dict) and content_map:
            content = next((v for v in content_map.values() if isinstance(v, str)), "")
        else:
            content = ""
    name = note.get("name") if isinstance(note.get("name"), str) else None
    if not content and name:
        content = f"<p>{textmod.html_to_text(name)}</p>"
    html = textmod.sanitize_html(content[:100_000].replace("\x00", ""))
    summary = _str(note.get("summary"), 2000)
    if summary is not None:
        summary = textmod.html_to_text(summary).strip("\u200b ") or None
    language = None
    if isinstance(note.get("contentMap"), dict) and note["contentMap"]:
        language = str(next(iter(note["contentMap"]))).replace("\x00", "")[:16]
    return {
        "uri": note["id"],
        "url": id_of(note.get("url")),
        "attributed_to": id_of(note.get("attributedTo")),
        "content_html": html,
        "content_text": textmod.html_to_text(html),
        "summary": summary,
        "sensitive": _bool(note.get("sensitive"), bool(summary)),
        "language": language,
        "in_reply_to": id_of(note.get("inReplyTo")),
        "context": id_of(note.get("context")),
        "conversation": id_of(note.get("conversation")),
        "published": parse_time(note.get("published")),
        "updated": parse_time(note.get("updated")),
        "to": ids_of(note.get("to")),
        "cc": ids_of(note.get("cc")),
        "bto": ids_of(note.get("bto")),
        "bcc": ids_of(note.get("bcc")),
        "audience": ids_of(note.get("audience")),
        "mentions": mentions_of(note),
        "hashtags": hashtags_of(note),
        "attachments": attachments_of(note),
    }


def attachments_of(note: dict) -> list[dict]:
    """A note's files (``Document``, ``Image``, ``Video``, ``Audio``), kept as
    links to where their server keeps them: ``url`` may be a string, a Link or
    a list of either (Misskey, Pleroma give ``url`` a list of Links)."""
    out = []
    for item in as_list(note.get("attachment"))[:16]:
        if not isinstance(item, dict) or "PropertyValue" in types_of(item):
            continue
        url, media_type = None, _str(item.get("mediaType"), 255)
        for candidate in as_list(item.get("url")) or [item.get("href")]:
            if isinstance(candidate, dict):
                media_type = media_type or _str(candidate.get("mediaType"), 255)
                candidate = candidate.get("href")
            if isinstance(candidate, str) and candidate.startswith(("https://", "http://")) and len(candidate) <= 2048:
                url = candidate
                break
        if url is None:
            continue
        name = _str(item.get("name"), 1500)
        filename = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1][:255] or "file"
        out.append({"url": url, "media_type": (media_type or "application/octet-stream").lower(),
                    "filename": filename, "description": name or None})
    return out

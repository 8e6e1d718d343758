"""Finding remote actors, keys and objects: WebFinger, actor fetch, key fetch.

Names follow the house style: ``fetch_*`` always goes to the network,
``ensure_*`` answers from the store when it can and fetches otherwise.

Every fetch is a GET signed by the instance actor (servers in authorized
fetch mode, and GoToSocial always, refuse unsigned GETs). Origins are
checked: a document must come from the host its ``id`` names, and a handle
resolves only if WebFinger on the actor's own host agrees.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urldefrag

import sqlalchemy as sa

from hub.errors import BadRequest, FetchError, NotFound, UsageError
from hub.federation import documents as docs
from hub.ids import new_id
from hub.net import status_error
from hub.store import actors as actor_store
from hub.store.base import utcnow

if TYPE_CHECKING:
    from hub.federation import Federation

log = logging.getLogger(__name__)

_HANDLE = re.compile(r"^@?([^@\s/]+)@([a-z0-9.-]+(?::\d+)?)$", re.IGNORECASE)
KEY_REFETCH_INTERVAL_S = 30.0
KEY_CACHE_TTL_S = 300.0
KEY_CACHE_SIZE = 10_000


def parse_handle(handle: str) -> tuple[str, str] | None:
    m = _HANDLE.match(handle.strip())
    if not m:
        return None
    return m.group(1), m.group(2).lower()


async def fetch_document(fed: Federation, uri: str) -> tuple[Any, str]:
    """Signed GET of an ActivityStreams document; ``(document, final_url)``."""
    http = fed.http
    host = docs.host_of(uri)
    scheme = await fed.scheme_for(host)
    resp = await http.request("GET", uri, headers={"Accept": fed.accept}, signer=fed.instance_signer(scheme))
    if scheme == "rfc9421" and (resp.status in (400, 401, 403) or resp.status >= 500):
        # Double knock: the host may not read RFC 9421 after all.
        resp = await http.request("GET", uri, headers={"Accept": fed.accept}, signer=fed.instance_signer("cavage"))
        if resp.status == 200:
            await fed.remember_scheme(host, "cavage")
    if resp.status != 200:
        raise status_error(resp, uri)
    return resp.json(), resp.url


async def webfinger(fed: Federation, user: str, domain: str, *, resource: str | None = None) -> dict:
    resource = resource or f"acct:{user}@{domain}"
    # Outside development mode only https; in it, our own scheme first.
    cfg = fed.hub.cfg
    schemes = [cfg.scheme, "https" if cfg.scheme == "http" else "http"] if cfg.dev else ["https"]
    last: Exception | None = None
    for scheme in schemes:
        url = f"{scheme}://{domain}/.well-known/webfinger?resource={quote(resource, safe=':@')}"
        try:
            jrd, _ = await fed.http.get_json(
                url, accept="application/jrd+json, application/json", signer=fed.instance_signer()
            )
        except FetchError as exc:
            last = exc
            if exc.status_code is not None:  # the host answered: do not try the other scheme
                break
            continue
        if not isinstance(jrd, dict):
            raise FetchError(f"WebFinger for {resource} is not an object", permanent=True)
        return jrd
    if isinstance(last, FetchError) and last.status_code in (404, 410):
        raise NotFound(f"no account {user}@{domain}")
    raise last or FetchError(f"WebFinger for {resource} failed")


def self_link(jrd: dict) -> str | None:
    for link in docs.as_list(jrd.get("links")):
        if not isinstance(link, dict) or link.get("rel") != "self":
            continue
        ltype = str(link.get("type", ""))
        if ltype.startswith("application/activity+json") or ltype.startswith("application/ld+json"):
            href = link.get("href")
            if isinstance(href, str):
                return href
    return None


async def resolve_handle(fed: Federation, handle: str) -> sa.Row:
    """``@user@host`` (or an actor URI) to a stored actor, local or remote."""
    handle = handle.strip()
    if handle.startswith("http://") or handle.startswith("https://"):
        return await ensure_actor(fed, handle)
    parsed = parse_handle(handle)
    if parsed is None:
        raise UsageError(f"invalid handle {handle!r}: expected @user@host or an actor URL")
    user, domain = parsed
    hub = fed.hub
    if domain == hub.cfg.domain:
        async with hub.db.read() as conn:
            row = await actor_store.get_local_actor(conn, user)
        if row is None or row.type == "Application":
            raise NotFound(f"no local actor {user}")
        return row
    async with hub.db.read() as conn:
        cached = await actor_store.get_remote_actor_by_handle(conn, user, domain)
    if cached is not None and _fresh(fed, cached):
        return cached
    jrd = await webfinger(fed, user, domain)
    actor_uri = self_link(jrd)
    if not actor_uri:
        raise FetchError(f"WebFinger for {user}@{domain} has no ActivityPub link", permanent=True)
    actor = await ensure_actor(fed, actor_uri, refresh=True)
    actor_host = docs.host_of(actor.uri)
    if actor_host != domain:
        # The handle's domain delegates to another host: that host must
        # agree that this actor answers to this handle (Mastodon's check).
        confirm = await webfinger(fed, actor.username, actor_host, resource=actor.uri)
        subject = str(confirm.get("subject", "")).lower()
        if subject != f"acct:{user}@{domain}".lower() or self_link(confirm) != actor.uri:
            raise FetchError(f"{actor.uri} does not confirm the handle {user}@{domain}", permanent=True)
        async with hub.db.write() as conn:
            await actor_store.update_actor(conn, actor.id, {"domain": domain, "username": user})
            actor = await actor_store.get_actor_by_id(conn, actor.id)
    return actor


def _fresh(fed: Federation, row: sa.Row) -> bool:
    if row.local:
        return True
    if row.fetched_at is None:
        return False
    return utcnow() - row.fetched_at < dt.timedelta(seconds=fed.hub.cfg.actor_refresh_s)


async def ensure_actor(fed: Federation, uri: str, *, refresh: bool = False) -> sa.Row:
    """The actor at ``uri``: from the cache when fresh, else fetched (network) and stored."""
    hub = fed.hub
    uri = urldefrag(uri)[0] if "#" in uri and not hub.uris.is_local(uri) else uri
    if hub.uris.is_local(uri):
        async with hub.db.read() as conn:
            row = await actor_store.get_actor_by_uri(conn, uri)
        if row is None:
            raise NotFound(f"no local actor {uri}")
        return row
    async with hub.db.read() as conn:
        cached = await actor_store.get_actor_by_uri(conn, uri)
    if cached is not None and not refresh and _fresh(fed, cached):
        if cached.deleted_at is not None:
            raise NotFound(f"{uri} has been deleted")
        return cached
    try:
        doc, final_url = await fetch_document(fed, uri)
    except FetchError as exc:
        if exc.status_code == 410 and cached is not None:
            forget_keys_of(fed, cached.uri)
            async with hub.db.write() as conn:
                await actor_store.mark_actor_deleted(conn, cached.id)
        if cached is not None and not exc.permanent:
            return cached  # a transient failure keeps the cached copy usable
        raise
    return await store_actor_document(fed, doc, fetched_from=final_url, requested=uri)


async def store_actor_document(fed: Federation, doc: Any, *, fetched_from: str, requested: str | None = None) -> sa.Row:
    try:
        values, keys = docs.parse_actor(doc, new_id=new_id())
    except BadRequest as exc:
        raise FetchError(f"{fetched_from}: {exc.safe}", permanent=True) from None
    if not docs.same_origin(values["uri"], fetched_from):
        raise FetchError(f"{fetched_from} served an actor of another origin ({values['uri']})", permanent=True)
    if fed.hub.uris.is_local(values["uri"]):
        raise FetchError("a remote document claims one of our own actors", permanent=True)
    import json

    values["raw"] = json.dumps(doc)
    forget_keys_of(fed, values["uri"])
    async with fed.hub.db.write() as conn:
        actor_id = await actor_store.upsert_remote_actor(conn, values, keys)
        return await actor_store.get_actor_by_id(conn, actor_id)


async def ensure_key(fed: Federation, key_id: str, *, refresh: bool = False) -> sa.Row | None:
    """The stored key ``key_id`` with its owner's URI, fetched (network) if unknown.

    With ``refresh`` the owner is fetched again (key rotation), at most once
    per :data:`KEY_REFETCH_INTERVAL_S` for the same key.
    """
    if not refresh:
        cached = fed.key_cache.get(key_id)
        if cached is not None and time.monotonic() - cached[0] < KEY_CACHE_TTL_S:
            return cached[1]
    # One lookup per key at a time: a burst of requests signed with a key we
    # do not know yet causes one fetch, not one per request.
    flight = (key_id, refresh)
    pending = fed.key_lookups.get(flight)
    if pending is None:
        pending = asyncio.ensure_future(_get_key(fed, key_id, refresh=refresh))
        fed.key_lookups[flight] = pending
        pending.add_done_callback(lambda _f: fed.key_lookups.pop(flight, None))
    return await asyncio.shield(pending)


async def _get_key(fed: Federation, key_id: str, *, refresh: bool) -> sa.Row | None:
    hub = fed.hub
    async with hub.db.read() as conn:
        row = await actor_store.get_key(conn, key_id)
    if row is not None and not refresh:
        _cache_key(fed, key_id, row)
        return row
    if refresh:
        last = fed.key_refetch_at.get(key_id, 0.0)
        if time.monotonic() - last < KEY_REFETCH_INTERVAL_S:
            return row
        fed.key_refetch_at[key_id] = time.monotonic()
        if len(fed.key_refetch_at) > 10_000:
            fed.key_refetch_at.clear()
    if hub.uris.is_local(key_id):
        return row
    # Dereference the key id itself (not the owner we have on file): the
    # document there says who owns the key now.
    url = urldefrag(key_id)[0]
    doc, final_url = await fetch_document(fed, url)
    if docs.types_of(doc) & docs.ACTOR_TYPES:
        actor_uri = doc.get("id")
        if isinstance(actor_uri, str) and actor_uri != url and docs.same_origin(actor_uri, final_url):
            # A stub at the key URL (GoToSocial's /main-key): load the real actor.
            await ensure_actor(fed, actor_uri, refresh=True)
        else:
            await store_actor_document(fed, doc, fetched_from=final_url)
    else:
        owner = docs.id_of(doc.get("owner") or doc.get("controller")) if isinstance(doc, dict) else None
        if not owner or not docs.same_origin(owner, key_id):
            raise FetchError(f"key {key_id} has no owner of its origin", permanent=True)
        await ensure_actor(fed, owner, refresh=True)
    async with hub.db.read() as conn:
        row = await actor_store.get_key(conn, key_id)
    if row is not None:
        _cache_key(fed, key_id, row)
    return row


def _cache_key(fed: Federation, key_id: str, row: sa.Row) -> None:
    """Verified inbound traffic mostly comes from a few hundred keys: keep them
    in memory (bounded, expiring) instead of reading the database per request."""
    if len(fed.key_cache) >= KEY_CACHE_SIZE:
        fed.key_cache.clear()
    fed.key_cache[key_id] = (time.monotonic(), row)


def forget_keys_of(fed: Federation, actor_uri: str) -> None:
    for key_id, (_t, row) in list(fed.key_cache.items()):
        if row.owner_uri == actor_uri:
            fed.key_cache.pop(key_id, None)


async def fetch_object(fed: Federation, uri: str) -> dict:
    """A remote object, checked to come from its own origin."""
    doc, final_url = await fetch_document(fed, uri)
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
        raise FetchError(f"{uri} is not an object", permanent=True)
    if not docs.same_origin(doc["id"], final_url):
        raise FetchError(f"{final_url} served an object of another origin", permanent=True)
    return doc

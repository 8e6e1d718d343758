"""Verified profile links (``rel="me"``), as Mastodon does them.

A profile field whose value links to a web page is *verified* when that page
links back to the actor's profile with ``rel="me"`` (an ``<a>`` or a
``<link>``): the page's owner vouches for the profile. The check is a
durable job (``profile.verify_links``), queued whenever an actor's fields
change; it fetches each page once through the guarded HTTP client (no
private addresses outside development mode, size-limited) and records
``verified_at`` on the field. It never follows anything found on the page.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from html.parser import HTMLParser
from typing import TYPE_CHECKING

import sqlalchemy as sa

from hub.errors import HubError
from hub.jobs import DONE, Outcome
from hub.store import actors as actor_store
from hub.store.base import Conn, utcnow
from hub.store.jobs import job_row, put_jobs

if TYPE_CHECKING:
    from hub.context import Hub

log = logging.getLogger(__name__)

KIND = "profile.verify_links"
MAX_PAGE_BYTES = 1024 * 1024
_HREF = re.compile(r'<a\b[^>]*?\bhref="(https?://[^"]+)"', re.I)


def link_of(value: str) -> str | None:
    """The web page a field's value names: its one link, or the value itself
    when it is a bare URL (as Mastodon reads it)."""
    value = (value or "").strip()
    found = _HREF.findall(value)
    if len(found) == 1:
        return found[0].replace("&amp;", "&")
    if not found and re.fullmatch(r"https?://\S+", value):
        return value
    return None


class _RelMe(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in ("a", "link"):
            return
        a = dict(attrs)
        if "me" in (a.get("rel") or "").lower().split() and a.get("href"):
            self.hrefs.append(a["href"].strip())


def rel_me_links(html: str) -> list[str]:
    parser = _RelMe()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # a broken page has no links we can trust
        return parser.hrefs
    return parser.hrefs


def _same(a: str, b: str) -> bool:
    return a.rstrip("/").lower() == b.rstrip("/").lower()


def links_back(html: str, profile_urls: list[str]) -> bool:
    return any(_same(h, p) for h in rel_me_links(html) for p in profile_urls if p)


async def queue(conn: Conn, actor_id: str) -> None:
    await put_jobs(conn, [job_row(KIND, {"actor_id": actor_id})])


async def handle_verify(hub: Hub, job: sa.Row) -> Outcome:
    async with hub.db.read() as conn:
        actor = await actor_store.get_actor_by_id(conn, job.payload["actor_id"])
    if actor is None or not actor.local:
        return DONE
    profile = [actor.uri, actor.url, f"{hub.cfg.base_url}/@{actor.username}"]
    results: dict[str, str | None] = {}
    for field in actor.fields or []:
        url = link_of(field.get("value", ""))
        if url is None or url in results:
            continue
        results[url] = None
        try:
            resp = await hub.http.request("GET", url, headers={"Accept": "text/html"}, max_bytes=MAX_PAGE_BYTES)
        except HubError as exc:
            log.info("rel=me check of %s for @%s: %s", url, actor.username, exc.safe)
            continue
        ctype = resp.headers.get("Content-Type", "")
        if resp.status == 200 and ("html" in ctype or not ctype):
            if links_back(resp.body.decode("utf-8", "replace"), profile):
                results[url] = utcnow().isoformat()
    async with hub.db.write() as conn:
        actor = await actor_store.get_actor_by_id(conn, actor.id)
        fields = []
        for field in actor.fields or []:
            field = {k: v for k, v in field.items() if k != "verified_at"}
            url = link_of(field.get("value", ""))
            if url is not None and results.get(url):  # checked now, for this very value
                field["verified_at"] = results[url]
            fields.append(field)
        await actor_store.update_actor(conn, actor.id, {"fields": fields})
    return DONE


def verified_at(field: dict) -> dt.datetime | None:
    value = field.get("verified_at")
    try:
        return dt.datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def register(hub: Hub) -> None:
    hub.registry.register(KIND, lambda job: handle_verify(hub, job))

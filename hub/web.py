"""Server-rendered pages (jinja2) and what every page shares.

Templates live in ``web/templates`` and static files in ``web/static`` at the
top of the repository (``hub/_web`` in an installed wheel). Pages never load
anything from another origin.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import jinja2
import markupsafe
import sqlalchemy as sa
from aiohttp import web

from hub import __version__
from hub.context import Hub
from hub.store import messages as msg_store
from hub.store import social

HUB_KEY = web.AppKey("hub", Hub)
JINJA_KEY = web.AppKey("jinja", jinja2.Environment)

AP_TYPES = ("application/activity+json", "application/ld+json", "application/json")
HTML_TYPES = ("text/html", "application/xhtml+xml")


def web_dir() -> Path:
    here = Path(__file__).parent
    for candidate in (here / "_web", here.parent / "web"):
        if (candidate / "templates").is_dir():
            return candidate
    raise RuntimeError("web assets not found (expected web/templates next to the hub package)")


def make_jinja() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(web_dir() / "templates")),
        autoescape=jinja2.select_autoescape(["html"]),
        enable_async=False,
    )
    env.filters["datetime"] = lambda d: d.strftime("%Y-%m-%d %H:%M UTC") if isinstance(d, dt.datetime) else ""
    env.globals["version"] = __version__
    env.filters["rel_me"] = rel_me
    env.filters["when"] = when
    env.filters["filesize"] = filesize
    env.filters["short_actor"] = short_actor
    versions = static_versions(web_dir() / "static")
    env.globals["static"] = lambda name: f"/static/{name}?v={versions[name]}" if name in versions else f"/static/{name}"
    return env


def static_versions(directory: Path) -> dict[str, str]:
    """Each static file's content hash, put in its URL (``?v=``) so that a
    browser may keep it for a year and still sees a new release at once."""
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:12] for p in directory.iterdir() if p.is_file()}


def short_actor(uri: str) -> str:
    """An actor's URI as a short name people recognise: ``acme@shop.example``."""
    from urllib.parse import urlsplit

    parts = urlsplit(str(uri or ""))
    name = parts.path.rstrip("/").rsplit("/", 1)[-1].lstrip("@")
    return f"{name}@{parts.netloc}" if name and parts.netloc else str(uri or "")


def filesize(n) -> str:
    if not isinstance(n, int) or n < 0:
        return ""
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def when(value) -> str:
    """An ISO 8601 time as people read it: ``2026-11-23 10:04 UTC``."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if not isinstance(value, dt.datetime):
        return ""
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


_A_REL = re.compile(r'(<a\b[^>]*?)\s+rel="[^"]*"', re.I)


def rel_me(html: str) -> markupsafe.Markup:
    """Links of a profile's fields marked ``rel="me"`` (sanitised HTML in, so
    that the linked sites can verify the profile, as Mastodon does)."""
    html = _A_REL.sub(r"\1", str(html or ""))
    return markupsafe.Markup(re.sub(r"<a\b", '<a rel="me nofollow noopener noreferrer"', html, flags=re.I))


def wants_activity_json(request: web.Request) -> bool:
    """Content negotiation between ActivityStreams JSON and HTML (HTML by default)."""
    accept = request.headers.get("Accept", "")
    if not accept:
        return False
    ap_q = html_q = 0.0
    for part in accept.split(","):
        media, *params = [p.strip() for p in part.split(";")]
        media = media.lower()
        q = 1.0
        for param in params:
            if param.lower().startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if media in AP_TYPES:
            ap_q = max(ap_q, q)
        elif media in HTML_TYPES or media in ("*/*", "text/*"):
            html_q = max(html_q, q if media in HTML_TYPES else q * 0.99)
    return ap_q > 0 and ap_q >= html_q


def render(request: web.Request, template: str, *, status: int = 200, **context) -> web.Response:
    """A page; it knows who is signed in (``session``) and the form token (``csrf_token``)."""
    from hub import web_accounts

    hub = request.app[HUB_KEY]
    env = request.app[JINJA_KEY]
    session = web_accounts.current(request)
    html = env.get_template(template).render(cfg=hub.cfg, session=session, csrf_token=web_accounts.csrf_token(request),
                                             **context)
    resp = web.Response(text=html, content_type="text/html", status=status)
    resp.headers["Vary"] = "Accept, Cookie"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"
    resp.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                               "script-src 'self'; frame-ancestors 'none'; form-action 'self'")
    if session is not None:
        resp.headers["Cache-Control"] = "private, no-store"
    return resp


async def profile_page(request: web.Request, actor: sa.Row) -> web.Response:
    hub = request.app[HUB_KEY]
    async with hub.db.read() as conn:
        notes = await msg_store.list_messages_by_actor(conn, actor.id, visibilities=("public",), limit=20)
        followers = await social.count_follows(conn, actor.id, followers=True)
        following = await social.count_follows(conn, actor.id, followers=False)
    return render(
        request,
        "profile.html",
        actor=actor,
        handle=f"@{actor.username}@{hub.cfg.domain}",
        notes=notes,
        followers=followers,
        following=following,
    )


async def note_page(request: web.Request, message: sa.Row, author: sa.Row) -> web.Response:
    hub = request.app[HUB_KEY]
    return render(request, "note.html", message=message, author=author, handle=f"@{author.username}@{hub.cfg.domain}")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": __version__})


def static_handler(directory: Path):
    """Files of ``web/static`` with caching headers. A URL naming the file's
    current version (``?v=`` as the pages write it) is kept for a year,
    unchanged (``immutable``); any other is revalidated each time (ETag and
    Last-Modified come from aiohttp's FileResponse, so that answers 304)."""
    files = {p.name: p for p in directory.iterdir() if p.is_file()}
    versions = static_versions(directory)

    async def handle(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = files.get(name)
        if path is None:
            raise web.HTTPNotFound(text="no such file")
        if request.query.get("v") == versions[name]:
            cache = "public, max-age=31536000, immutable"
        else:
            cache = "public, no-cache"
        return web.FileResponse(path, headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"})

    return handle


def setup(app: web.Application, hub: Hub) -> None:
    app[HUB_KEY] = hub
    app[JINJA_KEY] = make_jinja()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/static/{name}", static_handler(web_dir() / "static"))
    from hub import web_accounts, web_home, web_inbox, web_instance, web_notifications, web_public, web_settings

    web_public.setup(app)
    web_accounts.setup(app)
    web_home.setup(app)
    web_inbox.setup(app)
    web_settings.setup(app)
    web_notifications.setup(app)
    web_instance.setup(app)
    from hub import web_consent

    web_consent.setup(app)
